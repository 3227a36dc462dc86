using System.Collections.Concurrent;

namespace Crm.Service.Infrastructure.Changes;

/// <summary>
/// Lets the owner of a change consumer hold it between two batches and move its cursor back, so that changes are
/// handed again. A search index swapped for a rebuilt copy needs that: the changes made while the copy was filling
/// went to the old index, and the rewind is durable, so a crash right after the swap still hands them to the new
/// one. The dispatcher holds a consumer's gate while it reads, hands and saves a batch, and re-reads the cursor
/// after a rewind.
/// </summary>
public sealed class ChangeConsumerGates
{
    private readonly SqliteChangeFeed _feed;
    private readonly ChangeFeedSignal _signal;
    private readonly ConcurrentDictionary<string, Gate> _gates = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Func<CancellationToken, Task>> _rebuilders = new(StringComparer.Ordinal);
    private readonly Func<ChangeFeedOptions> _options;
    private readonly TimeProvider _time;

    // Holds refreshed or written since this process began are its own runs' (review LH3).
    private readonly DateTimeOffset _startedAt;

    internal ChangeConsumerGates(SqliteChangeFeed feed, ChangeFeedSignal signal, Func<ChangeFeedOptions> options, TimeProvider time) =>
        (_feed, _signal, _options, _time, _startedAt) = (feed, signal, options, time, time.GetUtcNow());

    /// <summary>This node's name in rebuild holds (<see cref="ChangeFeedOptions.NodeId"/>; the machine name when unset).</summary>
    public string NodeId => _options().NodeId is { Length: > 0 } id ? id : Environment.MachineName;

    /// <summary>A hold not refreshed for this long is a dead run's, and pruning removes it.</summary>
    public TimeSpan HoldExpiry => _options().RebuildHoldExpiry;

    /// <summary>How long something may be stuck before readiness says Degraded (<see cref="ChangeFeedOptions.DegradedAfter"/>).</summary>
    public TimeSpan DegradedAfter => _options().DegradedAfter;

    internal sealed class Gate
    {
        public SemaphoreSlim Lock { get; } = new(1, 1);
        public int Rewinds;
    }

    internal Gate For(string consumer) => _gates.GetOrAdd(consumer, _ => new Gate());

    /// <summary>The consumer's saved cursor, or null when no change was ever handled under that name.</summary>
    public Task<long?> CursorAsync(string consumer, CancellationToken cancellationToken = default) => _feed.FindCursorAsync(consumer, cancellationToken);

    /// <summary>The oldest change the feed still holds (null when empty): a consumer whose cursor is below it minus
    /// one never saw the pruned changes in between.</summary>
    public Task<long?> OldestChangeAsync(CancellationToken cancellationToken = default) => _feed.OldestSequenceAsync(cancellationToken);

    /// <summary>The head of the feed: the newest sequence ever handed out (it survives pruning), 0 when none.</summary>
    public Task<long> HeadAsync(CancellationToken cancellationToken = default) => _feed.LastSequenceAsync(cancellationToken);

    private static string AppliedName(string consumer) => consumer + "#applied";

    /// <summary>Names what rebuilds the consumer's index from the store (its <c>IndexRebuildService</c>): it must durably
    /// owe the rebuild before it returns, then start it.</summary>
    public void OnRebuildNeeded(string consumer, Func<CancellationToken, Task> oweAndStart) => _rebuilders[consumer] = oweAndStart;

    /// <summary>Asks for a rebuild of the consumer's index (its feed cursor fell into a pruned hole, review LE1); returns
    /// once the rebuild is durably owed. Fails while nothing that rebuilds it is registered yet: the caller retries.</summary>
    public Task RebuildAsync(string consumer, CancellationToken cancellationToken) =>
        _rebuilders.TryGetValue(consumer, out var rebuild)
            ? rebuild(cancellationToken)
            : throw new InvalidOperationException($"Nothing rebuilds the index of change consumer '{consumer}' yet.");

    /// <summary>
    /// What the store records about an index the consumer writes: the version marker it last put into the index
    /// (<see cref="RecordAppliedAsync"/>), or <see cref="RebuildOwed"/> while a rebuild found necessary has not
    /// completed, or null (never recorded). Kept next to the cursors, where the feed's pruning does not reach, so an
    /// older copy of the index is recognised however long ago the knowledge base last changed.
    /// </summary>
    public Task<long?> AppliedAsync(string consumer, CancellationToken cancellationToken = default) => _feed.FindCursorAsync(AppliedName(consumer), cancellationToken);

    public const long RebuildOwed = -1;

    /// <summary>Records (never lowers) the marker the consumer just wrote into its index; leaves a pending
    /// <see cref="RebuildOwed"/> alone: the index being written is the untrusted one.</summary>
    public Task RecordAppliedAsync(string consumer, long sequence, CancellationToken cancellationToken = default) =>
        _feed.SetNoteAsync(AppliedName(consumer), sequence, raiseOnly: true, cancellationToken);

    /// <summary>Durably notes that the consumer's index must be rebuilt: until <see cref="RebuildDoneAsync"/>, every start rebuilds it.</summary>
    public Task OweRebuildAsync(string consumer, CancellationToken cancellationToken = default) =>
        _feed.SetNoteAsync(AppliedName(consumer), RebuildOwed, raiseOnly: false, cancellationToken);

    /// <summary>A rebuilt index is in use with marker <paramref name="sequence"/>: the record is set to it (clearing an owed rebuild).</summary>
    public Task RebuildDoneAsync(string consumer, long sequence, CancellationToken cancellationToken = default) =>
        _feed.SetNoteAsync(AppliedName(consumer), sequence, raiseOnly: false, cancellationToken);

    /// <summary>The name of one rebuild run's hold: <c>{consumer}#rebuilding:{node}:{run}</c>.</summary>
    public string HoldName(string consumer, string run) => consumer + SqliteChangeFeed.RebuildHoldMarker + NodeId + ":" + run;

    /// <summary>Durably holds the feed's pruning, on every node, at <paramref name="from"/> while the consumer's index is
    /// rebuilt: its swap rewinds the consumer there, and the changes after it must still be kept (review LF3). One row
    /// per run (<see cref="HoldName"/>): runs on nodes that share an index never touch each other's (review LG2).</summary>
    public async Task HoldPruningAsync(string hold, string consumer, long from, CancellationToken cancellationToken = default)
    {
        _liveHolds[hold] = 0;
        try
        {
            await _feed.HoldAsync(hold, consumer, NodeId, from, _time.GetUtcNow(), cancellationToken);
        }
        catch
        {
            ForgetHold(hold);
            throw;
        }
    }

    // The holds of this process's runs: a start-up clean-up (one per index, each at its own time) leaves them.
    private readonly ConcurrentDictionary<string, byte> _liveHolds = new(StringComparer.Ordinal);

    /// <summary>The run that wrote <paramref name="hold"/> is over (its hold released, or left for the next start).</summary>
    public void ForgetHold(string hold) => _liveHolds.TryRemove(hold, out _);

    /// <summary>Tells pruning the run is alive, and raises its hold to <paramref name="raiseTo"/> (never lowers it).
    /// False when the hold is gone: pruning found it stale.</summary>
    public Task<bool> RefreshHoldAsync(string hold, long raiseTo, CancellationToken cancellationToken = default) =>
        _feed.RefreshHoldAsync(hold, raiseTo, _time.GetUtcNow(), cancellationToken);

    /// <summary>Ends one run's <see cref="HoldPruningAsync"/>.</summary>
    public Task ReleaseHoldAsync(string hold, CancellationToken cancellationToken = default) => _feed.ReleaseHoldAsync(hold, cancellationToken);

    /// <summary>Removes the holds this node's killed runs left (whatever index they name), but this process's runs':
    /// those it names as live, and any written or refreshed since the process began, whenever the clean-up runs
    /// (review LH3: a run of the other index may write its hold between the snapshot and the read).</summary>
    public async Task<IReadOnlyList<string>> ReleaseNodeHoldsAsync(CancellationToken cancellationToken = default)
    {
        string[] live = [.. _liveHolds.Keys];
        if (AfterLiveSnapshotForTests is { } hook)
            await hook();
        return await _feed.ReleaseNodeHoldsAsync(NodeId, live, _startedAt, cancellationToken);
    }

    /// <summary>Test hook: awaited by <see cref="ReleaseNodeHoldsAsync"/> after it read which holds are live.</summary>
    internal Func<Task>? AfterLiveSnapshotForTests { get; set; }

    /// <summary>Every rebuild hold, on every node.</summary>
    public Task<IReadOnlyList<RebuildHoldRecord>> HoldsAsync(CancellationToken cancellationToken = default) => _feed.HoldsAsync(cancellationToken);

    /// <summary>Waits until the consumer is between batches and keeps it there until the pause is disposed.</summary>
    public async Task<Pause> PauseAsync(string consumer, CancellationToken cancellationToken = default)
    {
        var gate = For(consumer);
        await gate.Lock.WaitAsync(cancellationToken);
        return new Pause(this, consumer, gate);
    }

    public sealed class Pause : IAsyncDisposable
    {
        private readonly ChangeConsumerGates _owner;
        private readonly string _consumer;
        private readonly Gate _gate;
        private bool _released;
        private bool _rewound;

        internal Pause(ChangeConsumerGates owner, string consumer, Gate gate) => (_owner, _consumer, _gate) = (owner, consumer, gate);

        /// <summary>Durably moves the cursor back to <paramref name="sequence"/> (never forward); the consumer
        /// continues from there once the pause ends, in this process or after a restart.</summary>
        public async Task RewindAsync(long sequence, CancellationToken cancellationToken = default)
        {
            await _owner._feed.RewindCursorAsync(_consumer, sequence, cancellationToken);
            Interlocked.Increment(ref _gate.Rewinds);
            _rewound = true;
        }

        public ValueTask DisposeAsync()
        {
            if (!_released)
            {
                _released = true;
                _gate.Lock.Release();
                // Wake the consumer now rather than at its next poll.
                if (_rewound)
                    _owner._signal.Notify();
            }
            return ValueTask.CompletedTask;
        }
    }
}
