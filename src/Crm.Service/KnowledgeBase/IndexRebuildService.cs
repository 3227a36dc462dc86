using Crm.Service.Infrastructure.Changes;
using Crm.Service.Search;

namespace Crm.Service.KnowledgeBase;

/// <summary>Where a reindex stands, for the admin API and the console.</summary>
public sealed record ReindexProgress(string State, int Total, int Done, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Error);

/// <summary>
/// Rebuilds a search index fed by the change feed from the store: every document into a new index, then an atomic
/// swap (searches keep answering from the old one meanwhile). Changes committed while it ran went to the old index, so
/// just before the swap the indexer's feed cursor is moved back, durably, to where the rebuild began: the indexer then
/// hands those changes again to the new index, with its usual retries, and a crash right after the swap cannot skip
/// them. One rebuild at a time. On start, the index is rebuilt by itself when <see cref="RebuildReasonAsync"/> finds
/// it cannot be trusted to follow the store; the indexer handles no change before that check is done.
/// The articles (<see cref="ReindexService"/>) and the records (tickets, messages, customers) each have one.
/// </summary>
public abstract class IndexRebuildService(ISearchIndex index, string consumerName, Action startIndexer, IChangeFeed feed,
    ChangeConsumerGates gates, TimeProvider time, ILogger logger) : BackgroundService
{
    protected const int PageSize = 500;
    private readonly object _gate = new();
    private ReindexProgress _progress = new("idle", 0, 0, null, null, null);
    private Task? _running;

    /// <summary>What the index is called in logs and errors ("search index", "records search index").</summary>
    protected abstract string IndexName { get; }

    /// <summary>The admin endpoint that rebuilds it by hand.</summary>
    protected abstract string ReindexEndpoint { get; }

    protected ISearchIndex Index => index;

    protected ChangeConsumerGates Gates => gates;

    protected string ConsumerName => consumerName;

    public ReindexProgress Progress { get { lock (_gate) return _progress; } }

    /// <summary>Runs before a rebuild reads anything (e.g. the store's schema made ready).</summary>
    protected virtual Task BeforeRebuildAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>How many documents the store holds (the rebuild's total).</summary>
    protected abstract Task<int> CountAsync(CancellationToken cancellationToken);

    /// <summary>Every document of the store, in pages.</summary>
    protected abstract IAsyncEnumerable<IReadOnlyList<SearchDocument>> PagesAsync(CancellationToken cancellationToken);

    /// <summary>Why the index cannot be trusted to follow the store, or null when it can.</summary>
    protected abstract Task<string?> RebuildReasonAsync(CancellationToken cancellationToken);

    /// <summary>Starts a rebuild in the background, or returns false when one is already running.</summary>
    public bool TryStart(out Task running)
    {
        lock (_gate)
        {
            if (_running is { IsCompleted: false } current)
            {
                running = current;
                return false;
            }
            _progress = new("running", 0, 0, time.GetUtcNow(), null, null);
            running = _running = Task.Run(RunWhileOwedAsync);
            return true;
        }
    }

    /// <summary>Runs a rebuild to the end (the --reindex command), reporting progress as it goes.</summary>
    public async Task<ReindexProgress> RunAsync(IProgress<ReindexProgress>? report, CancellationToken cancellationToken)
    {
        lock (_gate)
            _progress = new("running", 0, 0, time.GetUtcNow(), null, null);
        await RunCoreAsync(cancellationToken, report);
        return Progress;
    }

    /// <summary>Rebuilds, and again while the store still records a rebuild as owed (review LF2): one that failed, or one
    /// owed anew (a pruned hole) while the previous run was finishing and <see cref="TryStart"/> saw it still running.
    /// A failed run is retried with backoff, up to 5 minutes apart, until the node stops.</summary>
    private async Task RunWhileOwedAsync()
    {
        var delay = TimeSpan.FromSeconds(1);
        var stopping = _stopping.Token;
        try
        {
            while (true)
            {
                await RunCoreAsync(stopping);
                bool owed;
                try
                {
                    owed = await gates.AppliedAsync(consumerName, stopping) == ChangeConsumerGates.RebuildOwed;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "Could not read whether the {IndexName} is still owed a rebuild.", IndexName);
                    owed = Progress.State == "failed";
                }
                if (!owed)
                    return;
                if (Progress.State == "failed")
                {
                    logger.LogWarning("The {IndexName} is still owed a rebuild; trying again in {Delay}.", IndexName, delay);
                    await Task.Delay(delay, TimeProvider.System, stopping);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMinutes(5).Ticks));
                }
                lock (_gate)
                    _progress = new("running", 0, 0, time.GetUtcNow(), null, null);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The node stops; an owed rebuild is done at its next start.
        }
    }

    private readonly CancellationTokenSource _stopping = new();

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await base.StopAsync(cancellationToken);
    }

    private async Task RunCoreAsync(CancellationToken cancellationToken, IProgress<ReindexProgress>? report = null)
    {
        var swapped = false;
        var held = false;
        try
        {
            await BeforeRebuildAsync(cancellationToken);
            var from = await feed.LastSequenceAsync(cancellationToken);
            // Pruning on every node keeps what follows "from" until the swap has rewound the indexer there (review LF3).
            await gates.HoldPruningAsync(consumerName, from, cancellationToken);
            held = true;
            var total = await CountAsync(cancellationToken);
            Update(p => p with { Total = total }, report);
            await using (var rebuild = await index.BeginRebuildAsync(cancellationToken))
            {
                await foreach (var page in PagesAsync(cancellationToken))
                {
                    await rebuild.AddAsync(page, cancellationToken);
                    Update(p => p with { Done = p.Done + page.Count }, report);
                }
                // What changed while the new index was filling went to the old one. With the indexer held between
                // batches, its cursor goes back to where the rebuild began (committed before the swap, so a crash
                // after the swap still leaves those changes owed), then the swap; the indexer hands them again.
                await rebuild.OptimizeAsync(cancellationToken);
                await using var pause = await gates.PauseAsync(consumerName, cancellationToken);
                await pause.RewindAsync(from, cancellationToken);
                await rebuild.MarkAppliedAsync(from, cancellationToken);
                await rebuild.CompleteAsync(cancellationToken);
                swapped = true;
                // The rebuilt index is in use: its marker is the store's record now, which also clears an owed rebuild.
                await gates.RebuildDoneAsync(consumerName, from, cancellationToken);
            }
            Update(p => p with { State = "completed", FinishedAt = time.GetUtcNow() }, report);
            logger.LogInformation("The {IndexName} was rebuilt from {Count} documents ({Engine}).", IndexName, Progress.Done, index.Engine);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            if (swapped)
                logger.LogError(e, "The rebuilt {IndexName} is in use, but finishing the rebuild failed; the changes made meanwhile are handed to it by the change feed.", IndexName);
            else
                logger.LogError(e, "Rebuilding the {IndexName} failed; the previous index is still in use.", IndexName);
            Update(p => p with { State = "failed", FinishedAt = time.GetUtcNow(), Error = e.Message }, report);
        }
        finally
        {
            if (held)
                await ReleasePruningHoldAsync();
        }
    }

    private async Task ReleasePruningHoldAsync()
    {
        try
        {
            await gates.ReleasePruningAsync(consumerName, CancellationToken.None);
        }
        catch (Exception e)
        {
            // Left behind, it only keeps changes longer; this node's next start or rebuild removes it.
            logger.LogWarning(e, "Could not remove the pruning hold of the {IndexName} rebuild.", IndexName);
        }
    }

    private void Update(Func<ReindexProgress, ReindexProgress> change, IProgress<ReindexProgress>? report)
    {
        ReindexProgress now;
        lock (_gate)
            now = _progress = change(_progress);
        report?.Report(now);
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        gates.OnRebuildNeeded(consumerName, OweAndStartAsync);
        return base.StartAsync(cancellationToken);
    }

    /// <summary>The indexer's cursor fell into a hole of the pruned feed (this node's index was not written for longer
    /// than the retention, and another node pruned past it): the index missed changes it can never be handed, so it is
    /// rebuilt from the store. Owed durably first, so a stop before the swap rebuilds at the next start.</summary>
    private async Task OweAndStartAsync(CancellationToken cancellationToken)
    {
        await gates.OweRebuildAsync(consumerName, cancellationToken);
        logger.LogWarning("The {IndexName} {Index} missed changes pruned from the feed before it read them: rebuilding it.", IndexName, index.Identity);
        TryStart(out _);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // A pruning hold a killed rebuild of this index left behind (a rebuild owed is started again below).
        bool running;
        lock (_gate)
            running = _running is { IsCompleted: false };
        if (!running)
            await ReleasePruningHoldAsync();
        string? reason;
        try
        {
            reason = await RebuildReasonAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // An index that could not be checked is not trusted: a rebuild is owed (review R2).
            logger.LogWarning(e, "Could not check whether the {IndexName} can be trusted; a rebuild is owed (POST {Endpoint} rebuilds it by hand).", IndexName, ReindexEndpoint);
            reason = "The start-up check of the " + IndexName + " failed";
        }
        if (reason is not null)
        {
            logger.LogWarning("{Reason}: rebuilding the {IndexName} {Index}.", reason, IndexName, index.Identity);
            // Durable before the indexer is released: it keeps writing (and raising the marker of) the untrusted
            // index meanwhile, and a failed or killed rebuild must not leave that index looking trusted at the next
            // start. Retried until recorded; the indexer waits (a stop cancels it, leaving the indexer unreleased).
            await OweRebuildDurablyAsync(stoppingToken);
            TryStart(out _);
        }
        startIndexer();
    }

    private async Task OweRebuildDurablyAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                await gates.OweRebuildAsync(consumerName, stoppingToken);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Could not record that the {IndexName} is owed a rebuild; retrying in {Delay}.", IndexName, delay);
                await Task.Delay(delay, time, stoppingToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }

    /// <summary>
    /// The checks both indexes share, once the store is known to hold documents: an empty index, no cursor of its own,
    /// a feed pruned past its cursor, an index ahead of the whole feed (the database was restored from a backup, so the
    /// index may hold what was published or made public in the lost time; not "ahead of the store's record": a stop
    /// between the index's marker and the store's record leaves it one batch ahead), or behind what the store recorded
    /// as indexed (<paramref name="owed"/>: a restored older copy, which would keep things findable that were
    /// unpublished or deleted since).
    /// </summary>
    protected async Task<string?> CommonRebuildReasonAsync(Func<long, Task<long?>> owed, CancellationToken cancellationToken)
    {
        if (await index.CountAsync(cancellationToken) == 0)
            return $"The {IndexName} is empty but the store holds what it indexes";
        if (await gates.CursorAsync(consumerName, cancellationToken) is not { } cursor)
            return $"The {IndexName} has no change-feed cursor of its own (it was never written by this store under this name)";
        if (await gates.OldestChangeAsync(cancellationToken) is { } oldest && oldest > cursor + 1)
            return $"The change feed was pruned past the {IndexName}'s cursor ({cursor}; oldest change kept {oldest})";
        var applied = await index.AppliedSequenceAsync(cancellationToken);
        if (applied is { } ahead && ahead > await gates.HeadAsync(cancellationToken))
            return $"The {IndexName} reflects the change feed up to {ahead}, beyond the store's newest change (was the database restored from a backup?)";
        if (await owed(cursor) is { } last && (applied is null || applied < last))
            return applied is null
                ? $"The {IndexName} holds no version marker (written before markers, or restored from such a copy), so it cannot be checked against the store"
                : $"The {IndexName} is an older copy: it reflects the change feed up to {applied}, but the store recorded changes up to {last} as indexed (a restored backup or snapshot?)";
        return null;
    }
}
