using System.Diagnostics;
using Crm.Service.Testing;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>Issue 21's "a reindex command": <c>Crm.Service --reindex</c> (the built service, a real process, service
/// stopped) rebuilds the articles' and the records' indexes from the store, prints its progress and exits 0.</summary>
public sealed class ReindexCommandTests
{
    [Fact]
    public async Task The_reindex_command_rebuilds_both_indexes_from_the_store_and_exits()
    {
        using var data = new TempDirectory();
        await using (var app = new CrmApp(data.Path))
        {
            using var editor = await KbClient.EditorAsync(app);
            await KbClient.PublishAsync(editor, await KbClient.CreateAsync(editor, "Anvil care", "Oil the anvil."));
            await KbClient.PublishAsync(editor, await KbClient.CreateAsync(editor, "Bellows care", "Patch the bellows."));
            await KbClient.CreateAsync(editor, "Draft", "Not yet.");
        }
        var hostDirectory = BuiltService.HostDirectory();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(hostDirectory, "Crm.Service.dll"), "--reindex"])
        {
            WorkingDirectory = hostDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["Store__DataDirectory"] = data.Path;
        start.Environment["Cluster__SiloPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Cluster__GatewayPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Auth__BootstrapAdminKey"] = CrmApp.AdminKey;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(180)))
            await process.WaitForExitAsync(timeout.Token);

        var printed = await output;
        Assert.True(process.ExitCode == 0, printed + await errors);
        // All three articles are indexed (drafts too: readers filter by status), then the records.
        Assert.Contains("reindex: completed, 3 articles", printed, StringComparison.Ordinal);
        Assert.Contains("tickets, messages and customers", printed, StringComparison.Ordinal);
    }
}
