using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Changes;

/// <summary>
/// Tails the change feed for every registered <see cref="IChangeConsumer"/>: each gets the changes after its persisted
/// cursor, in sequence order and in batches, and its cursor moves only after <see cref="IChangeConsumer.HandleAsync"/>
/// returned. Delivery is at least once: a crash between the two hands the batch again. Consumers run independently, so
/// one that fails is retried with backoff while the others keep going. Commits wake the consumers; a poll is the fallback.
/// A consumer that serves its own node (<see cref="IChangeConsumer.EveryNode"/>: the console's live pushes and queue
/// counters) gets every change on every node, under a cursor in memory that starts at the feed's head. Embedded mode runs
/// one dispatcher per SQLite file. Nodes sharing one index (Elasticsearch) run its consumer under one saved cursor each
/// at its own pace: a batch handled twice is harmless, and a cursor save is refused after a rebuild's rewind (review LH2).
/// </summary>
internal sealed class ChangeFeedDispatcher(
    SqliteChangeFeed feed,
    ChangeFeedSignal signal,
    StoreInitializer initializer,
    IEnumerable<IChangeConsumer> consumers,
    ChangeFeedStatus status,
    ChangeConsumerGates gates,
    IOptions<ChangeFeedOptions> options,
    TimeProvider time,
    ILogger<ChangeFeedDispatcher> logger) : BackgroundService
{
    // Composed at start, not in the constructor: reading the options here would fail the resolution of every hosted
    // service on a bad setting, before start-up validation names it.
    private IReadOnlyList<IChangeConsumer> _consumers = [];

    private static List<IChangeConsumer> WithJournal(IEnumerable<IChangeConsumer> consumers, ChangeFeedOptions settings)
    {
        var all = consumers.ToList();
        if (!string.IsNullOrWhiteSpace(settings.JournalFile))
            all.Add(new ChangeJournalConsumer(Path.GetFullPath(settings.JournalFile)));
        return all;
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _consumers = WithJournal(consumers, options.Value);
        // Two consumers under one name would share a cursor, and each would skip what the other handled.
        if (_consumers.GroupBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } shared)
            throw new InvalidOperationException($"Change consumers {string.Join(", ", shared.Select(c => c.GetType().Name))} share the name '{shared.Key}'; each needs its own.");
        if (_consumers.FirstOrDefault(c => string.IsNullOrWhiteSpace(c.Name)) is { } unnamed)
            throw new InvalidOperationException($"Change consumer {unnamed.GetType().Name} has no name.");
        foreach (var consumer in _consumers)
            status.Registered(consumer.Name);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await initializer.EnsureInitializedAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        var settings = options.Value;
        await Task.WhenAll(_consumers.Select(consumer => TailAsync(consumer, settings, stoppingToken)).Append(PruneAsync(settings, stoppingToken)));
    }

    private async Task TailAsync(IChangeConsumer consumer, ChangeFeedOptions settings, CancellationToken stoppingToken)
    {
        // How often the saved cursor was rewound when it was read: a save under an older count is refused (review LH2).
        long rewound = 0;
        // Saves the cursor (it only ever rises; a node's own one lives in memory). False: a rebuild rewound it since it
        // was read (on any node sharing it); the caller reads it again, and hands what follows again.
        async Task<bool> SaveAsync(long to)
        {
            if (consumer.EveryNode || await feed.SaveCursorAsync(consumer.Name, to, rewound, stoppingToken))
                return true;
            logger.LogInformation("The cursor of change consumer {Consumer} was rewound by an index rebuild while it handled changes up to {Sequence}; it reads the cursor again",
                consumer.Name, to);
            return false;
        }

        // Past a pruned hole.
        async Task<long?> MoveCursorAsync(long to)
        {
            if (!await SaveAsync(to))
                return null;
            status.CursorRead(consumer.Name, to);
            return to;
        }

        // Leave the host's start-up path before the first read.
        await Task.Yield();
        long? cursor = null;
        var failures = 0;
        var gate = gates.For(consumer.Name);
        var rewinds = Volatile.Read(ref gate.Rewinds);
        while (!stoppingToken.IsCancellationRequested)
        {
            var nextCommit = signal.NextCommit;
            IReadOnlyList<Change> batch = [];
            try
            {
                // Held while a batch is read, handled and its cursor saved: a rewind (ChangeConsumerGates) happens between batches.
                await gate.Lock.WaitAsync(stoppingToken);
                try
                {
                    if (Volatile.Read(ref gate.Rewinds) != rewinds)
                    {
                        rewinds = Volatile.Read(ref gate.Rewinds);
                        cursor = null;
                    }
                    if (cursor is null)
                    {
                        // A node's own consumer starts at the head as the store became ready, before anything loaded from it.
                        if (consumer.EveryNode)
                            cursor = await initializer.FeedHeadAtStartAsync(stoppingToken);
                        else
                        {
                            // The count first: a rewind between the two reads makes the save refused, never accepted stale.
                            rewound = await feed.RewindsAsync(consumer.Name, stoppingToken);
                            cursor = await feed.ReadCursorAsync(consumer.Name, stoppingToken);
                        }
                        status.CursorRead(consumer.Name, cursor.Value);
                    }
                    batch = await feed.ReadAsync(cursor.Value, settings.BatchSize, stoppingToken);
                    if (await PrunedPastAsync(cursor.Value, batch, settings, stoppingToken) is { } after)
                    {
                        (batch, var missed, var headBefore) = after;
                        if (missed)
                        {
                            var reloadedFrom = await feed.LastSequenceAsync(stoppingToken);
                            // The cursor moves only once the reset is done (a saved cursor durably): a failed one is
                            // found and tried again. An index owes its rebuild durably before its reset returns.
                            if (await consumer.ResetAsync(stoppingToken))
                            {
                                logger.LogError("Changes after {Cursor} were pruned before change consumer {Consumer} read them (down or failing longer than ChangeFeed:Retention, or another node pruned past this node's own cursor); it reloaded its state from the store",
                                    cursor.Value, consumer.Name);
                                cursor = await MoveCursorAsync(reloadedFrom);
                                continue;
                            }
                            // No state to reload: it goes on with what is kept (review LF1), skipping only the pruned
                            // changes. A new consumer (cursor 0) starts there by design.
                            if (cursor.Value > 0)
                                logger.LogError("Changes after {Cursor} were pruned before change consumer {Consumer} read them (down or failing longer than ChangeFeed:Retention); it goes on with the oldest change kept",
                                    cursor.Value, consumer.Name);
                            if (batch.Count == 0)
                            {
                                // Nothing is kept up to the head read before the (empty) batch: move past it.
                                cursor = await MoveCursorAsync(headBefore);
                                continue;
                            }
                        }
                    }
                    if (batch.Count > 0)
                    {
                        await consumer.HandleAsync(batch, stoppingToken);
                        if (!await SaveAsync(batch[^1].Sequence))
                        {
                            cursor = null;
                            continue;
                        }
                        cursor = batch[^1].Sequence;
                        failures = 0;
                        status.Handled(consumer.Name, cursor.Value, time.GetUtcNow());
                        if (batch.Count == settings.BatchSize)
                            continue;
                    }
                    else if (failures > 0)
                    {
                        // The feed answered again and there is nothing to hand: the consumer is healthy, not still failing.
                        failures = 0;
                        status.Recovered(consumer.Name);
                    }
                }
                finally
                {
                    gate.Lock.Release();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                failures++;
                status.Failed(consumer.Name, ex, time.GetUtcNow());
                var delay = settings.DelayAfter(failures);
                logger.LogError(ex, "Change consumer {Consumer} failed on changes {First}..{Last} (attempt {Attempt}); handing them again in {Delay}",
                    consumer.Name, batch.Count > 0 ? batch[0].Sequence : null, batch.Count > 0 ? batch[^1].Sequence : null, failures, delay);
                if (!await DelayAsync(delay, stoppingToken))
                    return;
                continue;
            }
            if (!await WaitForCommitAsync(nextCommit, settings.PollInterval, stoppingToken))
                return;
            if (settings.GatherDelay > TimeSpan.Zero && !await DelayAsync(settings.GatherDelay, stoppingToken))
                return;
        }
    }

    /// <summary>
    /// Whether changes after <paramref name="cursor"/> were pruned before the consumer read them. Sequences have no holes
    /// of their own (one writer; AUTOINCREMENT rolls back with its statement), so a first change past cursor + 1 is
    /// pruning; so is an empty read with the head past the cursor. The head is read only for an empty batch (the rare
    /// case), and then before the batch is read again: a head read first that is past an empty read means pruned, not
    /// yet committed (review LE6). A node's own consumers hold no pruning back; a saved cursor of another node's index
    /// does not hold this node's pruning back either (review LE1). A consumer that never saved a cursor (0) on a feed
    /// pruned since is reset too: an index started empty on an empty store would otherwise miss what was pruned. Returns
    /// null when there is nothing to say, else the batch (re-read), whether a hole was found, and the head read before
    /// an empty batch (nothing is kept up to it).
    /// </summary>
    private async Task<(IReadOnlyList<Change> Batch, bool Missed, long HeadBefore)?> PrunedPastAsync(long cursor,
        IReadOnlyList<Change> batch, ChangeFeedOptions settings, CancellationToken stoppingToken)
    {
        if (batch.Count > 0)
            return batch[0].Sequence > cursor + 1 ? (batch, true, 0) : null;
        var head = await feed.LastSequenceAsync(stoppingToken);
        if (head <= cursor)
            return null;
        var again = await feed.ReadAsync(cursor, settings.BatchSize, stoppingToken);
        return (again, again.Count == 0 || again[0].Sequence > cursor + 1, head);
    }

    private async Task PruneAsync(ChangeFeedOptions settings, CancellationToken stoppingToken)
    {
        await Task.Yield();
        // A node's own consumers keep no saved cursor and hold nothing back: only changes older than the retention go.
        var names = _consumers.Where(c => !c.EveryNode).Select(c => c.Name).ToList();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var now = time.GetUtcNow();
                var result = await feed.PruneAsync(names, now - settings.Retention, stoppingToken, now - settings.RebuildHoldExpiry);
                var (deleted, heldBackBy) = result;
                foreach (var stale in result.StaleHolds)
                    logger.LogWarning("Removed rebuild hold {Hold}: not refreshed for {Expiry}, so its run is dead (its node was killed, or came back under another name); pruning goes on past it",
                        stale, settings.RebuildHoldExpiry);
                status.Pruned(heldBackBy);
                if (deleted > 0)
                    logger.LogInformation("Pruned {Count} changes older than {Retention} that every consumer has handled", deleted, settings.Retention);
                if (heldBackBy.Count > 0)
                    logger.LogWarning("Changes older than {Retention} are kept because change consumers {Consumers} have not handled them; the Changes table grows until they catch up",
                        settings.Retention, string.Join(", ", heldBackBy));
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Pruning the change feed failed; trying again in {Interval}", settings.PruneInterval);
            }
            if (!await DelayAsync(settings.PruneInterval, stoppingToken))
                return;
        }
    }

    // Polls, gathering and backoff wait on the real clock: they pace the plumbing, not business time. On the injected
    // clock a test's FakeTimeProvider would stall every consumer after its first batch.
    private async Task<bool> WaitForCommitAsync(Task nextCommit, TimeSpan pollInterval, CancellationToken stoppingToken)
    {
        try
        {
            await nextCommit.WaitAsync(pollInterval, TimeProvider.System, stoppingToken);
        }
        catch (TimeoutException)
        {
            // Poll: catches writes that raised no signal.
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        return true;
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, TimeProvider.System, stoppingToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
