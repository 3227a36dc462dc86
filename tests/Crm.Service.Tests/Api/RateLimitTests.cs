using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Api;

public sealed class RateLimitTests : IDisposable
{
    private const string ProxyAddress = "10.0.0.1";

    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    /// <summary>TestServer requests have no remote address; this one gives them the address of a proxy in front of us.</summary>
    private sealed class FromAddress(IPAddress address) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((http, nextMiddleware) =>
            {
                http.Connection.RemoteIpAddress = address;
                return nextMiddleware(http);
            });
            next(app);
        };
    }

    private static WebApplicationFactory<Program> Behind(CrmApp app, string address) =>
        app.WithWebHostBuilder(web => web.ConfigureServices(services => services.AddSingleton<IStartupFilter>(new FromAddress(IPAddress.Parse(address)))));

    private static HttpRequestMessage Live(string? forwardedFor)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/health/live");
        if (forwardedFor is not null)
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        return request;
    }

    /// <summary>Sends until refused (the budget is far above the configured burst); returns the refusal or the last answer.</summary>
    private static async Task<HttpResponseMessage> ExhaustAsync(Func<Task<HttpResponseMessage>> send, int budget = 50)
    {
        HttpResponseMessage response = null!;
        for (var i = 0; i < budget; i++)
        {
            response = await send();
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                break;
        }
        return response;
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "a Retry-After in seconds");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(429, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Each_api_key_has_its_own_bucket_even_from_one_address()
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Auth:RequestsPerSecondPerClient"] = "1",
            ["Auth:BurstPerClient"] = "5",
        });
        using var keyA = await app.AgentAsync("agent-a");
        using var keyB = await app.AgentAsync("agent-b");

        var refused = await ExhaustAsync(() => keyA.GetAsync("/api/v1/tickets"));

        await AssertRefusedAsync(refused);
        Assert.Equal(HttpStatusCode.OK, (await keyB.GetAsync("/api/v1/tickets")).StatusCode);
    }

    [Fact]
    public async Task A_forwarded_for_header_from_an_unknown_proxy_does_not_give_a_fresh_bucket()
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Http:Limits:RequestsPerSecondPerAddress"] = "1",
            ["Http:Limits:BurstPerAddress"] = "5",
        });
        using var client = Behind(app, ProxyAddress).CreateClient();
        var spoofed = 0;

        var refused = await ExhaustAsync(() => client.SendAsync(Live($"203.0.113.{++spoofed}")));

        await AssertRefusedAsync(refused);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await client.SendAsync(Live("198.51.100.77"))).StatusCode);
    }

    [Theory]
    [InlineData("Http:KnownProxies:0", ProxyAddress)]
    [InlineData("Http:KnownNetworks:0", "10.0.0.0/8")]
    public async Task Behind_a_known_proxy_each_forwarded_client_address_has_its_own_bucket(string setting, string value)
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Http:Limits:RequestsPerSecondPerAddress"] = "1",
            ["Http:Limits:BurstPerAddress"] = "5",
            [setting] = value,
        });
        using var client = Behind(app, ProxyAddress).CreateClient();

        var refused = await ExhaustAsync(() => client.SendAsync(Live("203.0.113.1")));

        await AssertRefusedAsync(refused);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Live("203.0.113.2"))).StatusCode);
    }

    [Fact]
    public async Task Ipv6_clients_of_one_64_share_a_bucket_and_another_64_has_its_own()
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Http:Limits:RequestsPerSecondPerAddress"] = "1",
            ["Http:Limits:BurstPerAddress"] = "5",
            ["Http:KnownProxies:0"] = ProxyAddress,
        });
        using var client = Behind(app, ProxyAddress).CreateClient();
        var hopping = 0;

        // A client that takes a new address of its /64 for every request still spends one budget.
        var refused = await ExhaustAsync(() => client.SendAsync(Live($"2001:db8:5:6::{++hopping:x}")));

        await AssertRefusedAsync(refused);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Live("2001:db8:5:7::1"))).StatusCode);
    }

    [Fact]
    public async Task Requests_beyond_the_in_flight_limit_and_its_queue_are_refused()
    {
        // A real server (Kestrel on a port): TestServer does not start a request before its body is complete.
        await using var service = await ServiceProcess.StartAsync(_data.Path, new Dictionary<string, string>
        {
            ["Http__Limits__MaxConcurrentRequests"] = "1",
            ["Http__Limits__QueueLimit"] = "0",
            // The held body must outlast Kestrel's slow-upload guard however slowly a loaded machine runs the probes.
            ["Http__Limits__RequestBodyGraceSeconds"] = "600",
        });
        using var admin = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        admin.DefaultRequestHeaders.Add("X-Api-Key", CrmApp.AdminKey);
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "Test bridge", secret = CrmApp.ChannelSecret })).EnsureSuccessStatusCode();
        using var bridge = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        using var probes = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        using var giveUp = new CancellationTokenSource();
        var (probe, held, slow) = await HoldTheOnlySlotAsync(bridge, probes, "slow", giveUp.Token);
        slow.Release();

        await AssertRefusedAsync(probe);
        Assert.Equal(HttpStatusCode.Accepted, (await held.WaitAsync(TimeSpan.FromSeconds(30))).StatusCode);
        // The refused slow requests of earlier attempts never finish their bodies: their client gives up on them.
        await giveUp.CancelAsync();
        Assert.Equal(HttpStatusCode.OK, (await probes.GetAsync("/health/live")).StatusCode);
    }

    [Fact]
    public async Task A_stalled_upload_is_cut_off_after_its_grace_period_and_frees_its_place()
    {
        await using var service = await ServiceProcess.StartAsync(_data.Path, new Dictionary<string, string>
        {
            ["Http__Limits__MaxConcurrentRequests"] = "1",
            ["Http__Limits__QueueLimit"] = "0",
            ["Http__Limits__RequestBodyGraceSeconds"] = "20",
        });
        using var admin = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        admin.DefaultRequestHeaders.Add("X-Api-Key", CrmApp.AdminKey);
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "Test bridge", secret = CrmApp.ChannelSecret })).EnsureSuccessStatusCode();
        using var bridge = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        using var giveUp = new CancellationTokenSource();
        // The stalled request holds the only place first (a probe served before it took the place proves nothing) ...
        var (_, held, stalled) = await HoldTheOnlySlotAsync(bridge, admin, "stalled", giveUp.Token);
        // ... and, as its body never completes, the server gives up on it rather than holding the place for ever.
        var probe = await Eventually.WaitForAsync(() => admin.GetAsync("/health/live"), r => r.StatusCode == HttpStatusCode.OK,
            TimeSpan.FromSeconds(90), "the stalled upload's place to be freed");
        Assert.Equal(HttpStatusCode.OK, probe.StatusCode);
        stalled.Release();
        var ended = await held.ContinueWith(t => t.IsCompletedSuccessfully ? t.Result.StatusCode : (HttpStatusCode?)null, TaskScheduler.Default)
            .WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotEqual(HttpStatusCode.Accepted, ended);
        await giveUp.CancelAsync();
    }

    /// <summary>Sends a message whose body stops halfway until one such request holds the only slot (a probe answered
    /// 429). On a loaded box a probe can reach the slot before the slow request does; that slow request is then the one
    /// refused (the queue holds none) and the slot stays free, so another is sent.</summary>
    private static async Task<(HttpResponseMessage Probe, Task<HttpResponseMessage> Held, HeldContent Content)> HoldTheOnlySlotAsync(
        HttpClient bridge, HttpClient probes, string name, CancellationToken giveUp)
    {
        for (var attempt = 1; attempt <= 10; attempt++)
        {
            var body = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { messageId = $"{name}-{attempt}", sender = new { id = "slow@example.com" }, text = "slowly" }));
            var content = new HeldContent(body);
            var signed = Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, body);
            signed.Content = content;
            content.Headers.ContentType = new("application/json");
            var sending = bridge.SendAsync(signed, giveUp);
            await content.Started.WaitAsync(TimeSpan.FromSeconds(30));
            for (var i = 0; i < 30; i++)
            {
                var answer = await probes.GetAsync("/health/live");
                if (answer.StatusCode == HttpStatusCode.TooManyRequests)
                    return (answer, sending, content);
                await Task.Delay(100);
            }
        }
        throw new Xunit.Sdk.XunitException("No slow request ever held the only slot: every probe was served.");
    }

    /// <summary>A request body that sends its first half, then waits until the test lets it finish.</summary>
    private sealed class HeldContent(byte[] body) : HttpContent
    {
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Started => _started.Task;

        public void Release() => _released.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var half = body.Length / 2;
            await stream.WriteAsync(body.AsMemory(0, half));
            await stream.FlushAsync();
            _started.TrySetResult();
            await _released.Task;
            await stream.WriteAsync(body.AsMemory(half));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = body.Length;
            return true;
        }
    }
}
