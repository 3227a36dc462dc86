using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using Crm.Service.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Abstractions;

/// <summary>How connector leases are held (section <c>Connectors:Leases</c>).</summary>
public sealed class ConnectorLeaseOptions
{
    public const string Section = "Connectors:Leases";

    /// <summary>How long a grant lasts. A node that dies holds the work up for at most this long; the holder renews
    /// every third of it.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan Duration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a node that does not hold the lease asks again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Runs a connector's work for one account on one node of the cluster at a time, under the account's
/// <see cref="IConnectorLeaseGrain"/>: the node takes the lease (or waits while another holds it), starts the work,
/// renews every third of <see cref="ConnectorLeaseOptions.Duration"/>, and cancels the work when the lease is lost
/// (another holder has it) or could not be renewed before its own deadline. That deadline is counted on this node's
/// clock from when it asked, minus a sixth of the duration, so the work has stopped before the lease expires on the
/// grain's clock and another node can take it; nobody ever reads while another does, as long as the clocks' rates agree
/// and the work honours its token. A clean stop releases the lease so another node takes over at once.
/// </summary>
public sealed class ConnectorLeases(IGrainFactory grains, IOptions<ConnectorLeaseOptions> options, TimeProvider time, ILogger<ConnectorLeases> logger)
{
    /// <summary>The run holding each key on this node (its holder id).</summary>
    private readonly ConcurrentDictionary<string, string> _held = new(StringComparer.Ordinal);
    private long _runs;

    /// <summary>This node's holder id: unique per process start, so a restarted node never inherits its old grants. Each
    /// <see cref="RunWhileHeldAsync"/> call holds as "{Holder}/{run}": a run that is still stopping (its work slow to
    /// honour the token) keeps the lease from the next run for the same key on this node, and its release frees only
    /// its own grant.</summary>
    public string Holder { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";

    /// <summary>Whether this node holds the lease on <paramref name="key"/> and runs its work now.</summary>
    public bool Holds(string key) => _held.ContainsKey(key);

    /// <summary>Takes the lease on <paramref name="key"/> (waiting while another node holds it) and runs
    /// <paramref name="work"/> under it, again after a loss, until <paramref name="stopping"/> or the work ends on its own.</summary>
    public async Task RunWhileHeldAsync(string key, Func<CancellationToken, Task> work, CancellationToken stopping)
    {
        var lease = grains.GetGrain<IConnectorLeaseGrain>(key);
        var settings = options.Value;
        var holder = $"{Holder}/{Interlocked.Increment(ref _runs)}";
        string? lastHolder = null;
        while (!stopping.IsCancellationRequested)
        {
            var asked = time.GetTimestamp();
            ConnectorLeaseGrant grant;
            try
            {
                grant = await lease.AcquireAsync(holder, settings.Duration, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Lease {Lease}: could not ask for it; asking again in {Delay}", key, settings.RetryInterval);
                if (!await WaitAsync(settings.RetryInterval, stopping))
                    return;
                continue;
            }
            if (!grant.Granted)
            {
                if (lastHolder != grant.Holder)
                    logger.LogInformation("Lease {Lease}: held by {Holder}; this run ({Self}) waits", key, grant.Holder, holder);
                lastHolder = grant.Holder;
                if (!await WaitAsync(settings.RetryInterval, stopping))
                    return;
                continue;
            }
            lastHolder = null;
            logger.LogInformation("Lease {Lease}: taken by {Holder} (generation {Generation})", key, holder, grant.Generation);
            var ended = await RunHeldAsync(lease, key, holder, asked, work, stopping);
            if (ended)
                return;
        }
    }

    /// <returns>True when the work ended on its own or the node stops; false when the lease was lost.</returns>
    private async Task<bool> RunHeldAsync(IConnectorLeaseGrain lease, string key, string holder, long asked, Func<CancellationToken, Task> work, CancellationToken stopping)
    {
        using var held = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var lost = false;
        _held[key] = holder;
        var keeper = KeepAsync(lease, key, holder, asked, held, () => lost = true);
        try
        {
            await work(held.Token);
        }
        catch (OperationCanceledException) when (held.IsCancellationRequested)
        {
        }
        finally
        {
            _held.TryRemove(KeyValuePair.Create(key, holder));
            await held.CancelAsync();
            await keeper;
            if (!lost)
                await ReleaseAsync(lease, key, holder);
        }
        return !lost || stopping.IsCancellationRequested;
    }

    private async Task KeepAsync(IConnectorLeaseGrain lease, string key, string holder, long asked, CancellationTokenSource held, Action markLost)
    {
        var duration = options.Value.Duration;
        var every = duration / 3;
        var margin = duration / 6;
        var since = asked;
        try
        {
            while (true)
            {
                var left = duration - margin - time.GetElapsedTime(since);
                if (left <= TimeSpan.Zero)
                {
                    logger.LogWarning("Lease {Lease}: not renewed in time; the work stops so that another node can take over", key);
                    break;
                }
                await Task.Delay(every < left ? every : left, time, held.Token);
                // Computed once, before the call: a value computed after it could come out between -1 and -2 ms,
                // which WaitAsync reads as "no timeout".
                var remaining = duration - margin - time.GetElapsedTime(since);
                if (remaining <= TimeSpan.FromMilliseconds(1))
                    continue;
                var renewing = time.GetTimestamp();
                try
                {
                    using var deadline = new CancellationTokenSource(remaining, time);
                    using var bounded = CancellationTokenSource.CreateLinkedTokenSource(held.Token, deadline.Token);
                    var grant = await lease.RenewAsync(holder, duration, bounded.Token).WaitAsync(remaining, time, held.Token);
                    if (!grant.Granted)
                    {
                        logger.LogWarning("Lease {Lease}: lost to {Holder}; the work stops", key, grant.Holder ?? "nobody");
                        break;
                    }
                    since = renewing;
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !held.IsCancellationRequested)
                {
                    logger.LogWarning("Lease {Lease}: renewal failed ({Error}); trying again until the deadline", key, ex.Message);
                }
            }
            markLost();
            await held.CancelAsync();
        }
        catch (OperationCanceledException) when (held.IsCancellationRequested)
        {
        }
    }

    private async Task ReleaseAsync(IConnectorLeaseGrain lease, string key, string holder)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await lease.ReleaseAsync(holder, timeout.Token).WaitAsync(timeout.Token);
            logger.LogInformation("Lease {Lease}: released by {Holder}", key, holder);
        }
        catch (Exception ex)
        {
            // It expires on its own.
            logger.LogWarning("Lease {Lease}: could not release it ({Error}); it expires on its own", key, ex.Message);
        }
    }

    private async Task<bool> WaitAsync(TimeSpan delay, CancellationToken stopping)
    {
        try
        {
            await Task.Delay(delay, time, stopping);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}

public static class ConnectorLeaseExtensions
{
    /// <summary>Connector leases (<see cref="ConnectorLeases"/>), once, with options from <c>Connectors:Leases</c>.</summary>
    public static IServiceCollection AddConnectorLeases(this IServiceCollection services)
    {
        services.AddOptions<ConnectorLeaseOptions>().BindConfiguration(ConnectorLeaseOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<ConnectorLeases>();
        return services;
    }
}
