using System.Collections.Concurrent;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;

namespace Crm.Service.Infrastructure.Channels;

/// <summary>
/// Forwards health reports to the account's grain, which stores them for the admin view. Successes are forwarded at
/// most every <see cref="SuccessInterval"/> per account and a repeated error at most every <see cref="RepeatedErrorInterval"/>,
/// so a connector may report every send without a write per send.
/// </summary>
internal sealed class ChannelHealthReporter(IGrainFactory grains, IChannelAccounts accounts, TimeProvider time) : IChannelHealth
{
    public static readonly TimeSpan SuccessInterval = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan RepeatedErrorInterval = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, (DateTimeOffset At, string? Error)> _lastForwarded = new(StringComparer.Ordinal);

    public async ValueTask ReportSuccessAsync(string channelAccountId, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        if (!ShouldForward(channelAccountId, now, null))
            return;
        await grains.GetGrain<IChannelAccountGrain>(channelAccountId).ReportHealthAsync(new ChannelHealthReport(now), cancellationToken);
    }

    public async ValueTask ReportErrorAsync(string channelAccountId, string error, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        if (!ShouldForward(channelAccountId, now, error))
            return;
        await grains.GetGrain<IChannelAccountGrain>(channelAccountId).ReportHealthAsync(new ChannelHealthReport(now, error), cancellationToken);
    }

    private bool ShouldForward(string channelAccountId, DateTimeOffset now, string? error)
    {
        // Reports for accounts that do not exist would activate grains for nothing.
        if (accounts.Find(channelAccountId) is null)
            return false;
        var forward = true;
        _lastForwarded.AddOrUpdate(channelAccountId, (now, error), (_, last) =>
        {
            // A change between success and error, or to another error, is news; the same state again is not, for a while.
            var same = last.Error == error;
            forward = !same || now - last.At >= (error is null ? SuccessInterval : RepeatedErrorInterval);
            return forward ? (now, error) : last;
        });
        return forward;
    }
}
