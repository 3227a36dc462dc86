using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Api.Http;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;

namespace Crm.Service.Tests.Connectors;

/// <summary>Defect 7: what an unauthenticated caller can make the API channel spend.</summary>
public sealed class ApiChannelEdgeTests : IDisposable
{
    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    private static string Message(string id) => JsonSerializer.Serialize(new { messageId = id, sender = new { id = "+15550102030", kind = "phone" }, text = "hi" });

    /// <summary>The real store, counting the channel lookups grains make.</summary>
    private sealed class CountingStore(ICrmStore inner) : DelegatingCrmStore(inner)
    {
        public ConcurrentBag<string> ChannelLookups { get; } = [];

        public override Task<ChannelAccountRecord?> FindChannelAccountAsync(string id, CancellationToken cancellationToken = default)
        {
            ChannelLookups.Add(id);
            return Inner.FindChannelAccountAsync(id, cancellationToken);
        }
    }

    [Fact]
    public async Task An_unknown_channel_id_is_answered_404_without_a_grain_activation_or_a_query()
    {
        CountingStore? store = null;
        await using var app = new CrmApp(_data.Path, services: services => services.AddSingleton<ICrmStore>(provider =>
            store = new CountingStore(ActivatorUtilities.CreateInstance<SqliteCrmStore>(provider))));
        await app.CreateApiChannelAsync();
        var management = app.Grains.GetGrain<IManagementGrain>(0);
        var channelGrainsBefore = await ChannelGrainActivationsAsync(management);
        using var client = app.CreateClient();

        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 20; i++)
            answers.Add(await client.SendAsync(Signing.SignedPost($"/api/v1/channels/forged-{i}/messages", CrmApp.ChannelSecret, Message($"u-{i}"))));

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.NotFound, a.StatusCode));
        Assert.Equal("channelId", (await answers[0].Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        Assert.DoesNotContain(store!.ChannelLookups, id => id.StartsWith("forged-", StringComparison.Ordinal));
        Assert.Equal(channelGrainsBefore, await ChannelGrainActivationsAsync(management));
    }

    private static async Task<int> ChannelGrainActivationsAsync(IManagementGrain management) =>
        (await management.GetSimpleGrainStatistics()).Where(s => s.GrainType.Contains("ChannelAccountGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount);

    [Fact]
    public async Task Forged_requests_do_not_spend_the_channel_budget_and_signed_ones_over_it_get_429()
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Channels:Api:RequestsPerSecond"] = "1",
            ["Channels:Api:Burst"] = "3",
        });
        await app.CreateApiChannelAsync();
        using var client = app.CreateClient();

        var forged = new List<HttpStatusCode>();
        for (var i = 0; i < 20; i++)
            forged.Add((await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", "not-the-secret-000000000", Message($"f-{i}")))).StatusCode);
        var signed = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, Message("s-0")));
        HttpResponseMessage refused = signed;
        for (var i = 1; i < 10 && refused.StatusCode != HttpStatusCode.TooManyRequests; i++)
            refused = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, Message($"s-{i}")));

        Assert.All(forged, status => Assert.Equal(HttpStatusCode.Unauthorized, status));
        Assert.Equal(HttpStatusCode.Accepted, signed.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "a Retry-After in seconds");
        Assert.Equal("urn:crm:problem:rate-limited", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_body_over_the_limit_without_a_content_length_is_refused_413()
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?> { ["Channels:Api:MaxBodyBytes"] = "4096" });
        await app.CreateApiChannelAsync();
        using var client = app.CreateClient();
        var request = Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, new string('x', 10_000));
        // Chunked: no Content-Length to refuse early on, so the reader must stop at the limit.
        request.Content = new StreamContent(new UnknownLengthStream(await request.Content!.ReadAsByteArrayAsync())) { Headers = { ContentType = new("application/json") } };

        var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task Kestrel_stops_a_streamed_body_at_the_endpoint_limit()
    {
        // A real server: TestServer has no per-request body size feature.
        await using var service = await ServiceProcess.StartAsync(_data.Path, new Dictionary<string, string> { ["Channels__Api__MaxBodyBytes"] = "4096" });
        using var admin = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        admin.DefaultRequestHeaders.Add("X-Api-Key", CrmApp.AdminKey);
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "Test bridge", secret = CrmApp.ChannelSecret })).EnsureSuccessStatusCode();
        using var bridge = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        var request = Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, new string('x', 100_000));
        request.Content = new StreamContent(new UnknownLengthStream(await request.Content!.ReadAsByteArrayAsync())) { Headers = { ContentType = new("application/json") } };

        var refused = await bridge.SendAsync(request);
        var accepted = await bridge.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, Message("k-1")));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
    }

    [Fact]
    public async Task A_claimed_content_length_of_20_MiB_allocates_nothing_near_it()
    {
        var body = new MemoryStream(new byte[100]);
        const long claimed = 20L * 1024 * 1024;

        var before = GC.GetAllocatedBytesForCurrentThread();
        var read = await RequestBodyReader.ReadAsync(body, claimed, claimed, default);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(100, read?.Length);
        Assert.True(allocated < 256 * 1024, $"allocated {allocated} bytes for a 100-byte body");
    }

    [Fact]
    public async Task A_body_longer_than_the_limit_is_refused_whatever_it_claimed()
    {
        Assert.Null(await RequestBodyReader.ReadAsync(new MemoryStream(new byte[5000]), declaredLength: 10, limit: 4096, default));
        Assert.Null(await RequestBodyReader.ReadAsync(new MemoryStream(new byte[10]), declaredLength: 5000, limit: 4096, default));
        Assert.Equal(4096, (await RequestBodyReader.ReadAsync(new MemoryStream(new byte[4096]), declaredLength: null, limit: 4096, default))?.Length);
        Assert.Equal(40_000, (await RequestBodyReader.ReadAsync(new MemoryStream(new byte[40_000]), declaredLength: null, limit: 1 << 20, default))?.Length);
    }

    private sealed class UnknownLengthStream(byte[] content) : MemoryStream(content)
    {
        public override bool CanSeek => false;
    }
}
