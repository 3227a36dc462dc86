using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.WebChat;

/// <summary>
/// Budgets of hub calls and visitor requests (HTTP requests also have the "webchat" rate-limiting policy), each per
/// visitor and per client address (a visitor who starts new sessions to get a new budget still shares the address's):
/// chat messages, typing and read signals, article searches, history reads, new sessions and upload bytes. Token
/// buckets, so a short burst passes and a flood is refused with the wait.
/// </summary>
public sealed class VisitorRateLimits : IDisposable
{
    private readonly PartitionedRateLimiter<string> _messages;
    private readonly PartitionedRateLimiter<string> _addresses;
    private readonly PartitionedRateLimiter<string> _signals;
    private readonly PartitionedRateLimiter<string> _searches;
    private readonly PartitionedRateLimiter<string> _searchAddresses;
    private readonly PartitionedRateLimiter<string> _reads;
    private readonly PartitionedRateLimiter<string> _readAddresses;
    private readonly PartitionedRateLimiter<string> _newSessions;
    private readonly PartitionedRateLimiter<string> _uploadAddresses;
    private readonly PartitionedRateLimiter<string> _uploadVisitors;
    private readonly PartitionedRateLimiter<string> _codeChecks;
    private readonly PartitionedRateLimiter<string> _codeCheckAddresses;
    private readonly PartitionedRateLimiter<string> _transcripts;
    private readonly long _uploadAddressBytes;
    private readonly long _uploadVisitorBytes;

    public VisitorRateLimits(IOptions<WebChatOptions> options)
    {
        var o = options.Value;
        _messages = Bucket(o.MessageBurstPerVisitor, TimeSpan.FromMinutes(1) / o.MessagesPerMinutePerVisitor);
        // An address may be a whole office behind NAT: five visitors' worth.
        _addresses = Bucket(o.MessageBurstPerVisitor * 5, TimeSpan.FromMinutes(1) / (o.MessagesPerMinutePerVisitor * 5));
        _signals = Bucket(30, TimeSpan.FromMinutes(1) / 120);
        // A search (a Lucene query of up to a few hundred clauses) at most every 2 s per visitor after a short burst.
        _searches = Bucket(5, TimeSpan.FromSeconds(2));
        _searchAddresses = Bucket(25, TimeSpan.FromSeconds(2) / 5);
        // The history is read on every (re)connect: a few reconnects in a row pass, a loop does not.
        _reads = Bucket(10, TimeSpan.FromSeconds(6));
        _readAddresses = Bucket(50, TimeSpan.FromSeconds(6) / 5);
        _newSessions = Bucket(o.NewSessionBurstPerAddress, TimeSpan.FromHours(1) / o.NewSessionsPerHourPerAddress);
        // Wrong codes: each code takes only a few tries anyway (the visitor grain); these stop a loop over many visitors.
        _codeChecks = Bucket(10, TimeSpan.FromMinutes(1));
        _codeCheckAddresses = Bucket(30, TimeSpan.FromMinutes(1) / 5);
        _transcripts = Bucket(o.TranscriptsPerHourPerVisitor, TimeSpan.FromHours(1) / o.TranscriptsPerHourPerVisitor);
        _uploadAddressBytes = Math.Min(o.UploadBytesPerHourPerAddress, int.MaxValue);
        _uploadVisitorBytes = Math.Min(o.UploadBytesPerDayPerVisitor, int.MaxValue);
        _uploadAddresses = BytesBucket((int)_uploadAddressBytes, TimeSpan.FromHours(1));
        _uploadVisitors = BytesBucket((int)_uploadVisitorBytes, TimeSpan.FromDays(1));
    }

    /// <summary>Null when the message may go; else how long to wait.</summary>
    public TimeSpan? TryAcquireMessage(Visitor visitor, string address) =>
        Acquire(_messages, KeyOf(visitor)) ?? Acquire(_addresses, address);

    public TimeSpan? TryAcquireSignal(Visitor visitor) => Acquire(_signals, KeyOf(visitor));

    /// <summary>An article search for the visitor's draft; refused searches are skipped (the next keystroke asks again).</summary>
    public TimeSpan? TryAcquireSearch(Visitor visitor, string address) =>
        Acquire(_searches, KeyOf(visitor)) ?? Acquire(_searchAddresses, address);

    public TimeSpan? TryAcquireHistory(Visitor visitor, string address) =>
        Acquire(_reads, KeyOf(visitor)) ?? Acquire(_readAddresses, address);

    public TimeSpan? TryAcquireCodeCheck(Visitor visitor, string address) =>
        Acquire(_codeChecks, KeyOf(visitor)) ?? Acquire(_codeCheckAddresses, address);

    public TimeSpan? TryAcquireTranscript(Visitor visitor) => Acquire(_transcripts, KeyOf(visitor));

    /// <summary>A new visitor or a new conversation from <paramref name="address"/>.</summary>
    public TimeSpan? TryAcquireNewSession(string address) => Acquire(_newSessions, address);

    /// <summary><paramref name="bytes"/> more of uploads by this visitor from this address.</summary>
    public TimeSpan? TryAcquireUpload(Visitor visitor, string address, long bytes)
    {
        if (bytes > _uploadVisitorBytes || bytes > _uploadAddressBytes)
            return TimeSpan.FromHours(1);
        return Acquire(_uploadVisitors, KeyOf(visitor), (int)bytes) ?? Acquire(_uploadAddresses, address, (int)bytes);
    }

    private static string KeyOf(Visitor visitor) => visitor.WidgetId + "/" + visitor.VisitorId;

    private static TimeSpan? Acquire(PartitionedRateLimiter<string> limiter, string key, int permits = 1)
    {
        using var lease = limiter.AttemptAcquire(key, permits);
        if (lease.IsAcquired)
            return null;
        return lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(5);
    }

    private static PartitionedRateLimiter<string> Bucket(int burst, TimeSpan perToken) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = perToken,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    // A byte budget refilled in 60 steps over the period (a token per byte would mean a timer tick per byte).
    private static PartitionedRateLimiter<string> BytesBucket(int bytes, TimeSpan period) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = bytes,
            TokensPerPeriod = Math.Max(1, bytes / 60),
            ReplenishmentPeriod = period / 60,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    public void Dispose()
    {
        foreach (var limiter in new[] { _messages, _addresses, _signals, _searches, _searchAddresses, _reads, _readAddresses, _newSessions, _uploadAddresses, _uploadVisitors, _codeChecks, _codeCheckAddresses, _transcripts })
            limiter.Dispose();
    }
}
