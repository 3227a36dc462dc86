using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Api;

/// <summary>
/// One token bucket per API channel, charged only for requests whose signature verified: the partitions are real
/// channels (bounded by what admins created), and a flood of forged requests spends nothing of a channel's budget.
/// </summary>
public sealed class ApiChannelRateLimiter(IOptions<ApiChannelOptions> options) : IAsyncDisposable
{
    private readonly PartitionedRateLimiter<string> _buckets = PartitionedRateLimiter.Create<string, string>(channel =>
        RateLimitPartition.GetTokenBucketLimiter(channel, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.Value.Burst,
            TokensPerPeriod = options.Value.RequestsPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }), StringComparer.Ordinal);

    /// <summary>Null when the request may proceed; otherwise the seconds to wait (for Retry-After).</summary>
    public int? TryAcquire(string channelId)
    {
        using var lease = _buckets.AttemptAcquire(channelId);
        if (lease.IsAcquired)
            return null;
        var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
        return Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
    }

    public ValueTask DisposeAsync() => _buckets.DisposeAsync();
}
