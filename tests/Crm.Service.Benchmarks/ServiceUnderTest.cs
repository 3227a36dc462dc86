using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Crm.Service.Testing;

namespace Crm.Service.Benchmarks;

/// <summary>The built service (Crm.Service.dll of the same configuration) in its own process on loopback ports.</summary>
internal sealed class ServiceUnderTest : IAsyncDisposable
{
    public const string AdminKey = "benchmark-admin-key-0123456789";
    private readonly Process _process;

    private ServiceUnderTest(Process process, string baseUrl)
    {
        _process = process;
        BaseUrl = baseUrl;
    }

    public string BaseUrl { get; }

    public static async Task<ServiceUnderTest> StartAsync(string dataDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var host = BuiltService.HostDirectory();
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(host, "Crm.Service.dll")])
        {
            WorkingDirectory = host,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        // Lets `perf` name JIT-compiled frames when someone profiles the run.
        start.Environment["DOTNET_PerfMapEnabled"] = Environment.GetEnvironmentVariable("DOTNET_PerfMapEnabled") ?? "0";
        start.Environment["DOTNET_EnableWriteXorExecute"] = Environment.GetEnvironmentVariable("DOTNET_EnableWriteXorExecute") ?? "1";
        start.Environment["Urls"] = $"http://127.0.0.1:{port}";
        start.Environment["Store__DataDirectory"] = dataDirectory;
        start.Environment["Cluster__SiloPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Cluster__GatewayPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Auth__BootstrapAdminKey"] = AdminKey;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["Channels__Api__RequestsPerSecond"] = "1000000";
        start.Environment["Channels__Api__Burst"] = "10000000";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("  [service] " + e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("  [service] " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var service = new ServiceUnderTest(process, $"http://127.0.0.1:{port}");
        using var client = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        for (var attempt = 0; attempt < 300; attempt++)
        {
            try
            {
                if ((await client.GetAsync("/health/ready")).IsSuccessStatusCode)
                    return service;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            if (process.HasExited)
                throw new InvalidOperationException($"The service exited with code {process.ExitCode}.");
            await Task.Delay(200);
        }
        throw new TimeoutException("The service did not become ready within 60 s.");
    }

    /// <summary>Runs the built service once with <paramref name="arguments"/> (a command such as --create-admin) and waits for it.</summary>
    public static async Task RunCommandAsync(string dataDirectory, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var host = BuiltService.HostDirectory();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(host, "Crm.Service.dll"), .. arguments])
        {
            WorkingDirectory = host,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["Store__DataDirectory"] = dataDirectory;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in environment)
            start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"The service {string.Join(' ', arguments)} exited with {process.ExitCode}: {await output}{await errors}");
    }

    /// <summary>The service process's resident memory (VmRSS), in MiB.</summary>
    public double ResidentMiB()
    {
        var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
