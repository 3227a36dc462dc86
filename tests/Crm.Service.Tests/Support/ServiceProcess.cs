using System.Diagnostics;
using System.Text;
using Crm.Service.Testing;

namespace Crm.Service.Tests.Support;

/// <summary>The service as a real child process (the built Crm.Service.dll), so a test can kill it with SIGKILL.</summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServiceProcess(Process process, string baseUrl)
    {
        _process = process;
        BaseUrl = baseUrl;
    }

    public string BaseUrl { get; }

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    public static async Task<ServiceProcess> StartAsync(string dataDirectory, IDictionary<string, string>? settings = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var service = await StartOnceAsync(dataDirectory, settings);
            try
            {
                await service.WaitUntilReadyAsync();
                return service;
            }
            catch (InvalidOperationException) when (attempt < 3 && service.Output.Contains("address already in use", StringComparison.Ordinal))
            {
                // A port that was free when picked was taken before the process bound it (another test's outgoing
                // connection can get it as its local port): the process exited at once, so start again on new ports.
                await service.DisposeAsync();
            }
        }
    }

    private static Task<ServiceProcess> StartOnceAsync(string dataDirectory, IDictionary<string, string>? settings)
    {
        var hostDirectory = BuiltService.HostDirectory();
        var port = FreePorts.Next();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(hostDirectory, "Crm.Service.dll")])
        {
            WorkingDirectory = hostDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var environment = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Urls"] = $"http://127.0.0.1:{port}",
            ["Store__DataDirectory"] = dataDirectory,
            ["Cluster__SiloPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Cluster__GatewayPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Auth__BootstrapAdminKey"] = CrmApp.AdminKey,
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
            environment[key] = value;
        foreach (var (key, value) in environment)
            start.Environment[key] = value;

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the service process.");
        var service = new ServiceProcess(process, $"http://127.0.0.1:{port}");
        process.OutputDataReceived += (_, e) => service.Append(e.Data);
        process.ErrorDataReceived += (_, e) => service.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return Task.FromResult(service);
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    private async Task WaitUntilReadyAsync()
    {
        using var client = new HttpClient { BaseAddress = new Uri(BaseUrl), Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"The service exited with {_process.ExitCode} during start:\n{Output}");
            try
            {
                if ((await client.GetAsync("/health/ready")).IsSuccessStatusCode)
                    return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Slow first answer.
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"The service did not become ready within 60 s:\n{Output}");
    }

    /// <summary>SIGKILL: no shutdown code runs, exactly like a power cut for the process.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
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
}
