using System.ComponentModel.DataAnnotations;

namespace Crm.Connectors.Api;

/// <summary>The messaging API channel (section "Channels:Api").</summary>
public sealed class ApiChannelOptions
{
    public const string Section = "Channels:Api";

    /// <summary>Largest request body accepted, attachments (base64) included.</summary>
    [Range(1024, 512L * 1024 * 1024)]
    public long MaxBodyBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>How far a request's timestamp may be from our clock; older requests are refused as replays.</summary>
    [Range(typeof(TimeSpan), "00:00:05", "01:00:00")]
    public TimeSpan TimestampTolerance { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Requests per second one channel may make (token bucket), counting only requests whose signature verified.</summary>
    [Range(1, 1_000_000)]
    public int RequestsPerSecond { get; set; } = 2000;

    /// <summary>Burst above <see cref="RequestsPerSecond"/> one channel may make.</summary>
    [Range(1, 10_000_000)]
    public int Burst { get; set; } = 10_000;

    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan WebhookTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Lets webhooks reach loopback, private, link-local, CGNAT and unique-local addresses. Off by default: a
    /// webhook URL must not become a way into the service's own network (SSRF). For tests and on-premises bridges.
    /// </summary>
    public bool AllowPrivateNetworkWebhooks { get; set; }
}
