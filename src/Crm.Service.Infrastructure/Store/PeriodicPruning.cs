using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Infrastructure.Store;

/// <summary>A background pass that deletes what has outlived its retention: first <see cref="FirstDelay"/> after start
/// (or sooner when the interval is shorter), then every <see cref="Interval"/> on the host's clock (so tests can move it).
/// A failed pass is logged and tried again at the next; deleting is idempotent, so every node may run it.</summary>
public abstract class PeriodicPruning(TimeProvider time, ILogger logger) : BackgroundService
{
    /// <summary>The host's clock (the one rows are stamped with).</summary>
    protected TimeProvider Time { get; } = time;

    /// <summary>A short wait after start keeps pruning out of the start-up path (migrations, grain activation).</summary>
    protected virtual TimeSpan FirstDelay => TimeSpan.FromMinutes(1);

    /// <summary>The time between passes (read each round, from the bound options).</summary>
    protected abstract TimeSpan Interval { get; }

    /// <summary>What is pruned, for the log ("request keys", "read notices").</summary>
    protected abstract string What { get; }

    /// <summary>One pass; answers how many rows were deleted.</summary>
    protected abstract Task<int> PruneOnceAsync(CancellationToken cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var wait = Interval < FirstDelay ? Interval : FirstDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(wait, Time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            wait = Interval;
            try
            {
                var deleted = await PruneOnceAsync(stoppingToken);
                if (deleted > 0)
                    logger.LogInformation("Pruned {Count} {What}", deleted, What);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Pruning {What} failed; trying again in {Interval}", What, Interval);
            }
        }
    }
}
