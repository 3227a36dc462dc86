using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.WebChat;

/// <summary>
/// Budgets of hub calls (HTTP requests have the "webchat" rate-limiting policy): chat messages per visitor and per
/// client address (a visitor who starts new sessions to get a new budget still shares the address's), and a looser
/// budget for typing and read signals. Token buckets, so a short burst passes and a flood is refused with the wait.
/// </summary>
public sealed class VisitorRateLimits : IDisposable
{
    private readonly PartitionedRateLimiter<string> _messages;
    private readonly PartitionedRateLimiter<string> _addresses;
    private readonly PartitionedRateLimiter<string> _signals;

    public VisitorRateLimits(IOptions<WebChatOptions> options)
    {
        var o = options.Value;
        _messages = Bucket(o.MessageBurstPerVisitor, o.MessagesPerMinutePerVisitor);
        // An address may be a whole office behind NAT: five visitors' worth.
        _addresses = Bucket(o.MessageBurstPerVisitor * 5, o.MessagesPerMinutePerVisitor * 5);
        _signals = Bucket(30, 120);
    }

    /// <summary>Null when the message may go; else how long to wait.</summary>
    public TimeSpan? TryAcquireMessage(Visitor visitor, string address) =>
        Acquire(_messages, visitor.WidgetId + "/" + visitor.VisitorId) ?? Acquire(_addresses, address);

    public TimeSpan? TryAcquireSignal(Visitor visitor) => Acquire(_signals, visitor.WidgetId + "/" + visitor.VisitorId);

    private static TimeSpan? Acquire(PartitionedRateLimiter<string> limiter, string key)
    {
        using var lease = limiter.AttemptAcquire(key);
        if (lease.IsAcquired)
            return null;
        return lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(5);
    }

    private static PartitionedRateLimiter<string> Bucket(int burst, int perMinute) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1) / perMinute,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    /// <summary>An IPv4 address is its own key; an IPv6 client keys on its /64 (one subscriber routinely has a whole /64).</summary>
    public static string AddressKey(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6 || IPAddress.IsLoopback(address))
            return address.ToString();
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    public void Dispose()
    {
        _messages.Dispose();
        _addresses.Dispose();
        _signals.Dispose();
    }
}
