using Crm.Service.Infrastructure.Changes;
using Crm.Connectors.Abstractions;
using Crm.Service.Search;

namespace Crm.Service.KnowledgeBase;

/// <summary>Where a reindex stands, for the admin API and the console.</summary>
public sealed record ReindexProgress(string State, int Total, int Done, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Error,
    DateTimeOffset? NextAttemptAt = null);

/// <summary>
/// Rebuilds a search index fed by the change feed from the store: every document into a new index, then an atomic
/// swap (searches keep answering from the old one meanwhile). Changes committed while it ran went to the old index, so
/// just before the swap the indexer's feed cursor is moved back, durably, to where the rebuild began: the indexer then
/// hands those changes again to the new index, with its usual retries, and a crash right after the swap cannot skip
/// them. One rebuild at a time; on a shared index (Elasticsearch) one node at a time, under a lease (review LF4). On
/// start, the index is rebuilt by itself when <see cref="RebuildReasonAsync"/> finds it cannot be trusted to follow the
/// store; the indexer handles no change before that check is done.
/// The articles (<see cref="ReindexService"/>) and the records (tickets, messages, customers) each have one.
/// </summary>
public abstract class IndexRebuildService(ISearchIndex index, string consumerName, Action startIndexer, IChangeFeed feed,
    ChangeConsumerGates gates, ConnectorLeases leases, TimeProvider time, ILogger logger) : BackgroundService
{
    protected const int PageSize = 500;
    private readonly object _gate = new();
    private ReindexProgress _progress = new("idle", 0, 0, null, null, null);
    private Task? _running;
    // Under _gate: a background run is active (it clears this itself, under the lock, when it ends); a TryStart during
    // it asked for another look at the owed record (review LG4); the backoff after a failure, which TryStart cuts short.
    private bool _active;
    private bool _rerun;
    private TaskCompletionSource? _wake;
    private bool _owedAfterFailure;
    // Under _gate: why the rewound indexer is behind after a swap, while it has not moved for ChangeFeed:DegradedAfter (review LH1).
    private string? _stalled;
    private readonly CancellationTokenSource _stopping = new();
    // Holds being kept alive or released in the background, by name (review LG1/LG3).
    private readonly Dictionary<string, Task> _holds = new(StringComparer.Ordinal);

    /// <summary>How often a run's hold tells pruning it is alive, and how often the rewound indexer's cursor is looked at.</summary>
    private TimeSpan HoldRefresh => TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, gates.HoldExpiry.Ticks / 4));
    private static readonly TimeSpan CatchUpPoll = TimeSpan.FromMilliseconds(500);

    /// <summary>What the index is called in logs and errors ("search index", "records search index").</summary>
    protected abstract string IndexName { get; }

    /// <summary>The admin endpoint that rebuilds it by hand.</summary>
    protected abstract string ReindexEndpoint { get; }

    protected ISearchIndex Index => index;

    protected ChangeConsumerGates Gates => gates;

    protected string ConsumerName => consumerName;

    public ReindexProgress Progress { get { lock (_gate) return _progress; } }

    /// <summary>Why readiness should report Degraded (the index is owed a rebuild and the last one failed), or null (review LG6).</summary>
    public string? Degradation
    {
        get
        {
            lock (_gate)
                return _owedAfterFailure && _progress.State == "failed"
                    ? $"The {IndexName} is owed a rebuild and the last attempt failed ({_progress.Error}); next attempt {_progress.NextAttemptAt:O} (POST {ReindexEndpoint} tries at once)"
                    : _stalled;
        }
    }

    /// <summary>Runs before a rebuild reads anything (e.g. the store's schema made ready).</summary>
    protected virtual Task BeforeRebuildAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>How many documents the store holds (the rebuild's total).</summary>
    protected abstract Task<int> CountAsync(CancellationToken cancellationToken);

    /// <summary>Every document of the store, in pages.</summary>
    protected abstract IAsyncEnumerable<IReadOnlyList<SearchDocument>> PagesAsync(CancellationToken cancellationToken);

    /// <summary>Why the index cannot be trusted to follow the store, or null when it can.</summary>
    protected abstract Task<string?> RebuildReasonAsync(CancellationToken cancellationToken);

    /// <summary>Test hook: awaited after a background run read whether a rebuild is still owed, before it acts on it.</summary>
    internal Func<Task>? AfterOwedReadForTests { get; set; }

    /// <summary>Test hook: awaited as a background run ends, after it let go of the lock (review LH4).</summary>
    internal Func<Task>? AsRunEndsForTests { get; set; }

    /// <summary>Starts a rebuild in the background, or returns false when one is already running. While a failed run
    /// waits to be tried again, the wait is cut short and a run starts at once (true).</summary>
    public bool TryStart(out Task running)
    {
        lock (_gate)
        {
            if (_active && _running is not null)
            {
                running = _running;
                // The run looks at the owed record again before it ends: an owe committed now is not missed (review LG4).
                _rerun = true;
                if (_wake is { } wake)
                {
                    _wake = null;
                    _progress = _progress with { NextAttemptAt = null };
                    wake.TrySetResult();
                    return true;
                }
                return false;
            }
            _progress = new("running", 0, 0, time.GetUtcNow(), null, null);
            _active = true;
            _rerun = false;
            running = _running = Task.Run(RunWhileOwedAsync);
            return true;
        }
    }

    /// <summary>Runs a rebuild to the end (the --reindex command, the service stopped on every node), reporting progress as it goes.</summary>
    public async Task<ReindexProgress> RunAsync(IProgress<ReindexProgress>? report, CancellationToken cancellationToken)
    {
        lock (_gate)
            _progress = new("running", 0, 0, time.GetUtcNow(), null, null);
        // No indexer runs to catch up: the hold goes as the run ends. No lease (review LH6): the command runs without
        // the cluster (no silo), so every node must be stopped, also with a shared (Elasticsearch) index.
        await RunCoreAsync(cancellationToken, report, catchUp: false);
        Task[] holds;
        lock (_gate)
            holds = [.. _holds.Values];
        await Task.WhenAll(holds);
        return Progress;
    }

    /// <summary>Rebuilds, and again while the store still records a rebuild as owed (review LF2): one that failed, or one
    /// owed anew (a pruned hole) while the previous run was finishing. A failed run is retried with backoff, up to 5
    /// minutes apart, until the node stops; <see cref="TryStart"/> cuts a wait short. The run ends, under the lock,
    /// only when no <see cref="TryStart"/> came after its last look at the owed record (review LG4).</summary>
    private async Task RunWhileOwedAsync()
    {
        var delay = TimeSpan.FromSeconds(1);
        var stopping = _stopping.Token;
        // Set when the exit path let go of _active under the lock: a run started right after it is not this one's to
        // clear (review LH4).
        var exited = false;
        try
        {
            var run = true;
            while (true)
            {
                if (run)
                    await RunOnceAsync(stopping);
                lock (_gate)
                    _rerun = false;
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
                if (AfterOwedReadForTests is { } hook)
                    await hook();
                if (!owed)
                {
                    lock (_gate)
                    {
                        _owedAfterFailure = false;
                        if (!_rerun)
                        {
                            _active = false;
                            exited = true;
                            return;
                        }
                    }
                    run = false;
                    continue;
                }
                if (Progress.State == "failed")
                {
                    var wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    var next = time.GetUtcNow() + delay;
                    lock (_gate)
                    {
                        _owedAfterFailure = true;
                        _wake = wake;
                        _progress = _progress with { NextAttemptAt = next };
                    }
                    logger.LogWarning("The {IndexName} is still owed a rebuild; trying again in {Delay} (at {Next:O}; POST {Endpoint} tries at once).", IndexName, delay, next, ReindexEndpoint);
                    await Task.WhenAny(Task.Delay(delay, TimeProvider.System, stopping), wake.Task);
                    stopping.ThrowIfCancellationRequested();
                    lock (_gate)
                        _wake = null;
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMinutes(5).Ticks));
                }
                lock (_gate)
                    _progress = new("running", 0, 0, time.GetUtcNow(), null, null);
                run = true;
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The node stops; an owed rebuild is done at its next start.
        }
        finally
        {
            if (AsRunEndsForTests is { } hook)
                await hook();
            if (!exited)
                lock (_gate)
                {
                    _active = false;
                    _wake = null;
                }
        }
    }

    private string LeaseKey => consumerName.Length <= 180 ? "index-rebuild:" + consumerName
        : "index-rebuild:" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(consumerName)));

    /// <summary>One rebuild. An index every node shares (Elasticsearch) is rebuilt by one node at a time, under a lease
    /// (review LF4): two at once would rewind the shared cursor to two starting points and swap twice. A node that
    /// waited skips an owed rebuild that another node completed meanwhile.</summary>
    private async Task RunOnceAsync(CancellationToken stopping, IProgress<ReindexProgress>? report = null, bool catchUp = true)
    {
        if (index.Engine != SearchOptions.ElasticsearchEngine)
        {
            await RunCoreAsync(stopping, report, catchUp);
            return;
        }
        bool owedBefore;
        try
        {
            owedBefore = await gates.AppliedAsync(consumerName, stopping) == ChangeConsumerGates.RebuildOwed;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "Could not read whether the {IndexName} is owed a rebuild.", IndexName);
            owedBefore = false;
        }
        await leases.RunWhileHeldAsync(LeaseKey, async held =>
        {
            if (owedBefore && await gates.AppliedAsync(consumerName, held) != ChangeConsumerGates.RebuildOwed)
            {
                logger.LogInformation("The shared {IndexName} {Index} was rebuilt by another node meanwhile; this node does not rebuild it again.", IndexName, index.Identity);
                Update(p => p with { State = "completed", FinishedAt = time.GetUtcNow() }, report);
                return;
            }
            try
            {
                await RunCoreAsync(held, report, catchUp);
            }
            catch (OperationCanceledException) when (held.IsCancellationRequested && !stopping.IsCancellationRequested)
            {
                // The lease could not be renewed in time: another node may take it and rebuild; this one runs again
                // once it holds the lease again, from the start (review LH7).
                logger.LogWarning("The {IndexName} rebuild lost its lease ({Lease}); it starts again once this node holds the lease again.", IndexName, LeaseKey);
                Update(p => p with { Error = "The rebuild lost its lease; it starts again once this node holds it again" }, report);
                throw;
            }
        }, stopping);
        stopping.ThrowIfCancellationRequested();
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        // The run and its hold's release finish before the host disposes the store and the index (review LG5).
        Task[] pending;
        lock (_gate)
            pending = [.. _holds.Values, _running ?? Task.CompletedTask];
        try
        {
            await Task.WhenAll(pending).WaitAsync(cancellationToken);
            lock (_gate)
                pending = [.. _holds.Values];
            await Task.WhenAll(pending).WaitAsync(cancellationToken);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "The {IndexName} rebuild did not finish stopping in time.", IndexName);
        }
        await base.StopAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _stopping.Dispose();
        base.Dispose();
        GC.SuppressFinalize(this);
    }

    private async Task RunCoreAsync(CancellationToken cancellationToken, IProgress<ReindexProgress>? report = null, bool catchUp = true)
    {
        long? swapHead = null;
        var swapped = false;
        TaskCompletionSource<long?>? ended = null;
        try
        {
            await BeforeRebuildAsync(cancellationToken);
            var from = await feed.LastSequenceAsync(cancellationToken);
            // Pruning on every node keeps what follows "from" until the swap has rewound the indexer there and the
            // indexer has read it again (review LF3, LG3). One hold per run, named after this node and the run.
            var hold = gates.HoldName(consumerName, $"{time.GetUtcNow():yyyyMMddHHmmss}-{Guid.NewGuid():N}"[..24]);
            await gates.HoldPruningAsync(hold, consumerName, from, cancellationToken);
            ended = new TaskCompletionSource<long?>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
                _holds[hold] = TendHoldAsync(hold, from, ended.Task, catchUp);
            var total = await CountAsync(cancellationToken);
            // Done starts again with each run (a run again after a lost lease adds its pages anew, review LH7).
            Update(p => p with { State = "running", Total = total, Done = 0 }, report);
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
                // The hold stays until the indexer has read again up to here: from the rewind on, also when the swap
                // then fails (review LH5), since the rewound indexer reads (from, head] again either way.
                swapHead = await feed.LastSequenceAsync(cancellationToken);
                await rebuild.MarkAppliedAsync(from, cancellationToken);
                await rebuild.CompleteAsync(cancellationToken);
                swapped = true;
                // Another node's indexer is not paused by this node's gate: between the rewind and the swap it may read
                // the rewound cursor, write a batch to the OLD index (the alias still named it) and save its cursor
                // past it. Rewinding again inside the same pause undoes such a save, so every indexer reads (from, ...]
                // again into the index now in use (review RA1).
                await pause.RewindAsync(from, cancellationToken);
                // The rebuilt index is in use: its marker is the store's record now, which also clears an owed rebuild.
                await gates.RebuildDoneAsync(consumerName, from, cancellationToken);
            }
            Update(p => p with { State = "completed", FinishedAt = time.GetUtcNow(), Error = null }, report);
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
            ended?.TrySetResult(swapHead);
        }
    }

    /// <summary>
    /// Keeps one run's hold: refreshed while the run works (pruning removes a hold not refreshed for
    /// <see cref="ChangeConsumerGates.HoldExpiry"/>, a dead run's), then, after the rewind, kept (raised to the indexer's
    /// cursor as it goes) until the rewound indexer has read again up to the head at the rewind: released at the swap,
    /// another node could prune what it has yet to read, and it would find a hole and rebuild again (review LG3).
    /// During that catch-up the hold is refreshed only while the cursor moves (review LH1): an indexer stuck for good
    /// (a poison document, a full disk) lets its hold expire, so pruning goes on on every node, and readiness says
    /// Degraded once it has not moved for ChangeFeed:DegradedAfter. A hold found gone (pruned as stale, or removed by a
    /// start-up clean-up) is written again where it stood (review LH3). Then released, retried with backoff until it
    /// goes (review LG1; the --reindex command tries a few times and leaves the rest to expiry, review LH6). A stop
    /// releases it once, at once; what a stop or kill leaves is removed at this node's next start or expires.
    /// </summary>
    private async Task TendHoldAsync(string hold, long from, Task<long?> ended, bool catchUp)
    {
        await Task.Yield();
        var stopping = _stopping.Token;
        var refreshed = time.GetTimestamp();
        async Task RefreshAsync(long raiseTo)
        {
            if (time.GetElapsedTime(refreshed) < HoldRefresh)
                return;
            refreshed = time.GetTimestamp();
            try
            {
                if (!await gates.RefreshHoldAsync(hold, raiseTo, stopping))
                {
                    var at = Math.Max(from, raiseTo);
                    logger.LogWarning("The pruning hold {Hold} of the {IndexName} rebuild was removed while its run lives; writing it again at {Sequence}.", hold, IndexName, at);
                    await gates.HoldPruningAsync(hold, consumerName, at, stopping);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Could not refresh the pruning hold {Hold}; trying again.", hold);
            }
        }

        try
        {
            try
            {
                while (!ended.IsCompleted)
                {
                    await Task.WhenAny(ended, Task.Delay(HoldRefresh, TimeProvider.System, stopping));
                    stopping.ThrowIfCancellationRequested();
                    await RefreshAsync(0);
                }
                if (catchUp && await ended is { } head)
                {
                    long? moved = null;
                    var movedAt = time.GetTimestamp();
                    try
                    {
                        while (true)
                        {
                            long? cursor = null;
                            try
                            {
                                cursor = await gates.CursorAsync(consumerName, stopping);
                            }
                            catch (Exception e) when (e is not OperationCanceledException)
                            {
                                logger.LogWarning(e, "Could not read the cursor of {Consumer}.", consumerName);
                            }
                            if (cursor >= head)
                                break;
                            if (cursor is { } at && (moved is null || at > moved))
                            {
                                if (moved is not null)
                                    movedAt = time.GetTimestamp();
                                moved = at;
                                SetStalled(null);
                                await RefreshAsync(at);
                            }
                            else if (time.GetElapsedTime(movedAt) is var still && still >= gates.DegradedAfter)
                                SetStalled($"The {IndexName} is behind since its rebuild: its indexer has not moved from {moved} towards {head} for {still}; its hold on the feed's pruning expires {gates.HoldExpiry} after it last moved");
                            await Task.Delay(CatchUpPoll, TimeProvider.System, stopping);
                        }
                    }
                    finally
                    {
                        SetStalled(null);
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Stopping: the run ends (StopAsync waits for it); its hold goes now, once.
                await ended;
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await gates.ReleaseHoldAsync(hold, timeout.Token);
                }
                catch (Exception e)
                {
                    logger.LogWarning(e, "Could not remove the pruning hold {Hold} while stopping; this node's next start removes it, or pruning after {Expiry}.", hold, gates.HoldExpiry);
                }
                return;
            }
            var delay = TimeSpan.FromSeconds(1);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await gates.ReleaseHoldAsync(hold, stopping.IsCancellationRequested ? CancellationToken.None : stopping);
                    return;
                }
                catch (Exception e) when (e is not OperationCanceledException || !stopping.IsCancellationRequested)
                {
                    if (!catchUp && attempt >= CommandReleaseAttempts)
                    {
                        // The --reindex command must end (review LH6): the hold expires, or this node's next start removes it.
                        logger.LogError(e, "Could not remove the pruning hold {Hold} of the {IndexName} rebuild after {Attempts} attempts; this node's next start removes it, or pruning after {Expiry}.",
                            hold, IndexName, attempt, gates.HoldExpiry);
                        return;
                    }
                    // Left behind, it would keep every node's pruning at its start: tried until it goes.
                    logger.LogWarning(e, "Could not remove the pruning hold {Hold} of the {IndexName} rebuild; trying again in {Delay}.", hold, IndexName, delay);
                    await Task.Delay(delay, TimeProvider.System, stopping);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMinutes(5).Ticks));
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            logger.LogWarning("The node stops before the pruning hold {Hold} could be removed; its next start removes it, or pruning after {Expiry}.", hold, gates.HoldExpiry);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Tending the pruning hold {Hold} failed; pruning removes it after {Expiry}.", hold, gates.HoldExpiry);
        }
        finally
        {
            gates.ForgetHold(hold);
            lock (_gate)
                _holds.Remove(hold);
        }
    }

    /// <summary>How often the --reindex command tries to remove its hold before it leaves it to expiry (review LH6).</summary>
    private const int CommandReleaseAttempts = 4;

    private void SetStalled(string? why)
    {
        lock (_gate)
            _stalled = why;
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
        // The pruning holds a killed run on this node left behind, of whatever index (a node restarted with another index
        // folder has another consumer name); never another node's, nor a run of this process (an admin's POST may have
        // started one already). A rebuild owed is started again below.
        // Two nodes under one name would remove each other's live holds at start (review LH3): the name is in the log.
        logger.LogInformation("The {IndexName} rebuild holds of this node are named after node {Node} (ChangeFeed:NodeId).", IndexName, gates.NodeId);
        try
        {
            var removed = await gates.ReleaseNodeHoldsAsync(stoppingToken);
            if (removed.Count > 0)
                logger.LogInformation("Removed pruning holds a stopped run on this node left: {Holds}.", string.Join(", ", removed));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "Could not remove the pruning holds a stopped run on this node left; pruning removes them after {Expiry}.", gates.HoldExpiry);
        }
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
