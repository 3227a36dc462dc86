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

    internal ChangeConsumerGates(SqliteChangeFeed feed, ChangeFeedSignal signal) => (_feed, _signal) = (feed, signal);

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

    /// <summary>Durably holds the feed's pruning, on every node, at <paramref name="from"/> while the consumer's index is
    /// rebuilt: its swap rewinds the consumer there, and the changes after it must still be kept (review LF3).</summary>
    public Task HoldPruningAsync(string consumer, long from, CancellationToken cancellationToken = default) =>
        _feed.SetNoteAsync(consumer + SqliteChangeFeed.RebuildHoldSuffix, from, raiseOnly: false, cancellationToken);

    /// <summary>Ends <see cref="HoldPruningAsync"/> (the rebuild swapped, failed, or a restart found it left behind).</summary>
    public Task ReleasePruningAsync(string consumer, CancellationToken cancellationToken = default) =>
        _feed.DeleteNoteAsync(consumer + SqliteChangeFeed.RebuildHoldSuffix, cancellationToken);

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
