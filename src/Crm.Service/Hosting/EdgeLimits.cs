using Crm.Connectors.Abstractions;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Crm.Service.Hosting;

/// <summary>Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (section "Http").</summary>
public sealed class HttpProxyOptions
{
    public const string Section = "Http";

    /// <summary>Addresses of the proxies in front of the service, e.g. "10.0.0.5". Empty: forwarded headers are ignored.</summary>
    public List<string> KnownProxies { get; set; } = [];

    /// <summary>Networks of the proxies in CIDR notation, e.g. "10.0.0.0/8". Empty: forwarded headers are ignored.</summary>
    public List<string> KnownNetworks { get; set; } = [];
}

/// <summary>
/// Limits applied to every request before anything else runs (section "Http:Limits"), so that a flood, even one
/// without a valid key, costs at most a refusal: no key lookup, no grain call, no unbounded pile of requests in flight.
/// The defaults let one bridge on one address post well over 10,000 messages a second.
/// </summary>
public sealed class HttpLimitsOptions
{
    public const string Section = "Http:Limits";

    /// <summary>Requests being served at once across the whole process.</summary>
    [Range(1, 1_000_000)]
    public int MaxConcurrentRequests { get; set; } = 512;

    /// <summary>Requests that may wait for a free slot when <see cref="MaxConcurrentRequests"/> are in flight; more are refused.</summary>
    [Range(0, 1_000_000)]
    public int QueueLimit { get; set; } = 128;

    /// <summary>Requests per second one client address may make (token bucket), whatever they are.</summary>
    [Range(1, 10_000_000)]
    public int RequestsPerSecondPerAddress { get; set; } = 20_000;

    [Range(1, 10_000_000)]
    public int BurstPerAddress { get; set; } = 40_000;

    /// <summary>Requests one client address may have in flight at once: slow uploads from one address cannot take
    /// every place of <see cref="MaxConcurrentRequests"/>.</summary>
    [Range(1, 100_000)]
    public int MaxConcurrentRequestsPerAddress { get; set; } = 64;

    /// <summary>The slowest a request body may arrive (Kestrel's slow-upload guard): a client that sends its body
    /// more slowly than this, after <see cref="RequestBodyGraceSeconds"/>, is cut off and its place freed.</summary>
    [Range(1, 1_000_000_000)]
    public int MinRequestBodyBytesPerSecond { get; set; } = 240;

    /// <summary>Kestrel requires more than one second.</summary>
    [Range(2, 3600)]
    public int RequestBodyGraceSeconds { get; set; } = 5;
}

/// <summary>The process-wide limiter in front of authentication: a token bucket per client address, then the
/// concurrency limit. A singleton so the host disposes it (and its cleanup timer) when it stops.</summary>
internal sealed class EdgeRateLimiter : IAsyncDisposable
{
    private const string Everyone = "";
    private readonly PartitionedRateLimiter<HttpContext>[] _parts;

    public EdgeRateLimiter()
    {
        // Options are read when a partition is first made, not here: this is resolved while the pipeline is built,
        // and a bad setting must be reported by start-up validation, not as a failure to build the pipeline.
        var perAddress = PartitionedRateLimiter.Create<HttpContext, string>(http => RateLimitPartition.GetTokenBucketLimiter(
            ClientAddress.Of(http), _ =>
            {
                var options = Options(http);
                return new TokenBucketRateLimiterOptions
                {
                    TokenLimit = options.BurstPerAddress,
                    TokensPerPeriod = options.RequestsPerSecondPerAddress,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                };
            }));
        var inFlight = PartitionedRateLimiter.Create<HttpContext, string>(http => IsHubTransport(http) ? HubTransports : RateLimitPartition.GetConcurrencyLimiter(
            Everyone, _ =>
            {
                var options = Options(http);
                return new ConcurrencyLimiterOptions
                {
                    PermitLimit = options.MaxConcurrentRequests,
                    QueueLimit = options.QueueLimit,
                    QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                };
            }));
        var inFlightPerAddress = PartitionedRateLimiter.Create<HttpContext, string>(http => IsHubTransport(http) ? HubTransports : RateLimitPartition.GetConcurrencyLimiter(
            ClientAddress.Of(http), _ => new ConcurrencyLimiterOptions { PermitLimit = Options(http).MaxConcurrentRequestsPerAddress, QueueLimit = 0 }));
        // The address limits first: a flooding or slow-uploading address is refused before it can take a place in the queue.
        Limiter = PartitionedRateLimiter.CreateChained(perAddress, inFlightPerAddress, inFlight);
        _parts = [perAddress, inFlightPerAddress, inFlight];
    }

    public PartitionedRateLimiter<HttpContext> Limiter { get; }

    private static readonly RateLimitPartition<string> HubTransports = RateLimitPartition.GetNoLimiter("hub-transport");

    /// <summary>
    /// A SignalR connection's transport request (the WebSocket, an SSE stream or a long poll: GETs under /hubs) lasts
    /// as long as the connection, up to 90 s for a poll, and would hold an in-flight place all that time: a few hundred
    /// open chat widgets would then take every place, and the service would stop answering everything else. These
    /// requests pass the per-address token bucket only; the hubs bound their connections themselves (the visitors'
    /// hub per visitor, per address and per node; the agents' hub by sign-in). Negotiation (POST) and sends (POST) are
    /// short and stay counted.
    /// </summary>
    internal static bool IsHubTransport(HttpContext http) =>
        HttpMethods.IsGet(http.Request.Method) && http.Request.Path.StartsWithSegments("/hubs");

    private static HttpLimitsOptions Options(HttpContext http) => http.RequestServices.GetRequiredService<IOptions<HttpLimitsOptions>>().Value;

    public async ValueTask DisposeAsync()
    {
        await Limiter.DisposeAsync();
        foreach (var part in _parts)
            await part.DisposeAsync();
    }
}

/// <summary>The client address the limits key on (<see cref="ClientAddresses"/>, shared with the connectors' limits).</summary>
internal static class ClientAddress
{
    public static string Of(HttpContext http) => ClientAddresses.Of(http);

    public static string KeyOf(IPAddress? address) => ClientAddresses.KeyOf(address);
}

public static class EdgeLimitExtensions
{
    /// <summary>Settings for forwarded headers and the limits in front of authentication.</summary>
    public static IHostApplicationBuilder AddCrmEdgeLimits(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<HttpLimitsOptions>().BindConfiguration(HttpLimitsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<HttpProxyOptions>().BindConfiguration(HttpProxyOptions.Section)
            .Validate(o => o.KnownProxies.All(p => IPAddress.TryParse(p, out _)), "Http:KnownProxies must be IP addresses, e.g. 10.0.0.5.")
            .Validate(o => o.KnownNetworks.All(n => System.Net.IPNetwork.TryParse(n, out _)), "Http:KnownNetworks must be networks in CIDR notation, e.g. 10.0.0.0/8.")
            .ValidateOnStart();
        builder.Services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<HttpProxyOptions>>((forwarded, proxies) =>
        {
            // The framework's defaults trust loopback, and with both lists empty the middleware would trust anyone:
            // only what is configured is trusted, and nothing is when nothing is configured.
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var proxy in proxies.Value.KnownProxies)
                forwarded.KnownProxies.Add(IPAddress.Parse(proxy));
            foreach (var network in proxies.Value.KnownNetworks)
                forwarded.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(network));
            var any = forwarded.KnownProxies.Count > 0 || forwarded.KnownIPNetworks.Count > 0;
            forwarded.ForwardedHeaders = any ? ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto : ForwardedHeaders.None;
            // Walk a chain of known proxies right to left; the walk stops at the first address that is not one.
            forwarded.ForwardLimit = null;
        });
        builder.Services.AddOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>().Configure<IOptions<HttpLimitsOptions>>((kestrel, limits) =>
            kestrel.Limits.MinRequestBodyDataRate = new(limits.Value.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(limits.Value.RequestBodyGraceSeconds)));
        builder.Services.AddSingleton<EdgeRateLimiter>();
        // Refusals by the endpoint policies (per channel, per API key) look like the edge's.
        builder.Services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.OnRejected = RefuseAsync;
        });
        return builder;
    }

    /// <summary>Forwarded headers first, so everything after sees the real client; then the edge limits, before
    /// routing and authentication, so a refused request costs nothing more.</summary>
    public static WebApplication UseCrmForwardedHeaders(this WebApplication app)
    {
        app.UseForwardedHeaders();
        return app;
    }

    public static WebApplication UseCrmEdgeLimits(this WebApplication app)
    {
        app.UseRateLimiter(new RateLimiterOptions
        {
            GlobalLimiter = app.Services.GetRequiredService<EdgeRateLimiter>().Limiter,
            RejectionStatusCode = StatusCodes.Status429TooManyRequests,
            OnRejected = RefuseAsync,
        });
        return app;
    }

    /// <summary>429 with Retry-After and a problem body.</summary>
    internal static async ValueTask RefuseAsync(OnRejectedContext context, CancellationToken cancellationToken)
    {
        var http = context.HttpContext;
        // A token bucket knows when the next token comes; a full concurrency limit does not, so a second is a fair guess.
        var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = Problems.Details(ProblemKind.RateLimited, $"Too many requests; retry after {seconds} s."),
        });
    }
}
