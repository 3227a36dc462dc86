using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Service.Tests.Email;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Support;

/// <summary>
/// The lifecycle every email test class shares: a real Postfix/Dovecot (<see cref="MailServer"/>) and a data folder
/// per test, both removed after it; the app with short reconnect delays and the "support" account on that server.
/// </summary>
public abstract class MailServerTest : IAsyncLifetime
{
    internal TempDirectory Data { get; } = new();

    internal MailServer Mail { get; private set; } = null!;

    public virtual async Task InitializeAsync() => Mail = await MailServer.StartAsync();

    public virtual async Task DisposeAsync()
    {
        await Mail.DisposeAsync();
        Data.Dispose();
    }

    /// <summary>The app on <see cref="Data"/>, reconnecting fast; <paramref name="more"/> adds or overrides settings.</summary>
    internal CrmApp App(IDictionary<string, string?>? more = null, Action<IServiceCollection>? services = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
        };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
            settings[key] = value;
        return new CrmApp(Data.Path, settings, services: services);
    }

    /// <summary>Puts the "support" account reading <see cref="MailServer.Support"/>'s INBOX (settings changed by <paramref name="change"/>).</summary>
    internal async Task PutAccountAsync(CrmApp app, Action<JsonObject>? change = null, bool enabled = true)
    {
        var settings = JsonSerializer.SerializeToNode(Mail.ChannelSettings())!.AsObject();
        change?.Invoke(settings);
        using var admin = app.Admin();
        var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", enabled, settings });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    internal static ChannelAccount Account(CrmApp app) => app.Services.GetRequiredService<IChannelAccounts>().Find("support")!;
}
