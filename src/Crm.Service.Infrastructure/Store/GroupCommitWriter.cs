using Crm.Service.Grains.Records;
using System.Diagnostics;
using System.Threading.Channels;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Changes;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Store;

/// <summary>
/// Group commit: write sets from many grains queue here and one loop commits everything queued in one
/// fsynced transaction, then answers each caller. While one commit is on disk the next batch gathers, so
/// a busy system commits hundreds of messages per fsync and an idle one adds no delay.
/// A batch that fails (a duplicate key) is re-run with one savepoint per write set, so only the offending
/// set fails and the others still commit together.
/// </summary>
internal sealed class GroupCommitWriter : IAsyncDisposable
{
    private readonly Channel<PendingCommit> _queue = Channel.CreateUnbounded<PendingCommit>(new() { SingleReader = true });
    private readonly IDbContextFactory<CrmDbContext> _contexts;
    private readonly StoreInitializer _initializer;
    private readonly ILogger<GroupCommitWriter> _logger;
    private readonly ChangeFeedSignal _changes;
    private readonly TimeProvider _time;
    private readonly int _maxBatch;
    private readonly Task _loop;

    public GroupCommitWriter(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, IOptions<StoreOptions> options,
        ChangeFeedSignal changes, TimeProvider time, ILogger<GroupCommitWriter> logger)
    {
        _contexts = contexts;
        _initializer = initializer;
        _logger = logger;
        _changes = changes;
        _time = time;
        _maxBatch = options.Value.MaxBatchSize;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Commits (from callers' view) are counted for the benchmark and diagnostics.</summary>
    public long Transactions => Interlocked.Read(ref _transactions);
    private long _transactions;

    public Task CommitAsync(WriteSet writes, CancellationToken cancellationToken)
    {
        if (writes.IsEmpty)
            return Task.CompletedTask;
        var pending = new PendingCommit(writes);
        if (!_queue.Writer.TryWrite(pending))
            throw new ObjectDisposedException(nameof(GroupCommitWriter), "The store is shutting down; nothing was written.");
        // Cancellation cannot take back a write that may already be on disk, so the caller waits for the outcome.
        return pending.Completion.Task;
    }

    private async Task RunAsync()
    {
        await _initializer.EnsureInitializedAsync(CancellationToken.None);
        var batch = new List<PendingCommit>(_maxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < _maxBatch && _queue.Reader.TryRead(out var next))
                batch.Add(next);
            try
            {
                await CommitBatchAsync(batch);
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Group commit of {Count} write sets failed; none was acknowledged", batch.Count);
                foreach (var pending in batch)
                    pending.Completion.TrySetException(ex);
            }
            batch.Clear();
        }
    }

    private async Task CommitBatchAsync(List<PendingCommit> batch)
    {
        try
        {
            await using (var db = await _contexts.CreateDbContextAsync())
            await using (var transaction = await db.Database.BeginTransactionAsync())
            {
                // Rows are added and attached explicitly, so there is nothing for EF to detect, and the context is
                // thrown away after the commit, so accepting the changes afterwards would be wasted work.
                db.ChangeTracker.AutoDetectChangesEnabled = false;
                var committedAt = _time.GetUtcNow();
                var changes = new List<ChangeRecord>(batch.Count * 2);
                var tickets = await TicketMerges.ReadAsync(db, batch.Select(p => p.Writes));
                var touched = new Queries.ProjectionTouches();
                foreach (var pending in batch)
                    await WriteSetApplier.ApplyAsync(db, pending.Writes, tickets, committedAt, changes, touched);
                await db.SaveChangesAsync(acceptAllChangesOnSuccess: false);
                await Queries.TicketProjections.RefreshAsync(db, touched);
                await ChangeRows.InsertAsync(db, changes);
                await transaction.CommitAsync();
            }
            Interlocked.Increment(ref _transactions);
            _changes.Notify();
            foreach (var pending in batch)
                pending.Completion.TrySetResult();
        }
        catch (Exception ex) when (IsPerWriteSetFailure(ex))
        {
            if (batch.Count == 1)
            {
                batch[0].Completion.TrySetException(Translate(ex));
                return;
            }
            await CommitOneByOneAsync(batch);
        }
    }

    private async Task CommitOneByOneAsync(List<PendingCommit> batch)
    {
        var outcomes = new Exception?[batch.Count];
        await using (var db = await _contexts.CreateDbContextAsync())
        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            var committedAt = _time.GetUtcNow();
            var changes = new List<ChangeRecord>();
            var tickets = await TicketMerges.ReadAsync(db, batch.Select(p => p.Writes));
            for (var i = 0; i < batch.Count; i++)
            {
                await transaction.CreateSavepointAsync("ws");
                var known = tickets.Snapshot();
                try
                {
                    changes.Clear();
                    var touched = new Queries.ProjectionTouches();
                    await WriteSetApplier.ApplyAsync(db, batch[i].Writes, tickets, committedAt, changes, touched);
                    await db.SaveChangesAsync();
                    await Queries.TicketProjections.RefreshAsync(db, touched);
                    await ChangeRows.InsertAsync(db, changes);
                    await transaction.ReleaseSavepointAsync("ws");
                }
                catch (Exception ex) when (IsPerWriteSetFailure(ex))
                {
                    await transaction.RollbackToSavepointAsync("ws");
                    await transaction.ReleaseSavepointAsync("ws");
                    tickets.Restore(known);
                    db.ChangeTracker.Clear();
                    outcomes[i] = Translate(ex);
                }
                // Rows saved so far are committed by the transaction; forget them so the next set starts clean.
                db.ChangeTracker.Clear();
            }
            await transaction.CommitAsync();
        }
        Interlocked.Increment(ref _transactions);
        _changes.Notify();
        for (var i = 0; i < batch.Count; i++)
        {
            if (outcomes[i] is { } failure)
                batch[i].Completion.TrySetException(failure);
            else
                batch[i].Completion.TrySetResult();
        }
    }

    /// <summary>Failures caused by one write set's content (constraint violations, a row tracked twice), not by the disk.</summary>
    private static bool IsPerWriteSetFailure(Exception ex) =>
        ex is DbUpdateException or InvalidOperationException or StaleWriteException || ex is SqliteException { SqliteErrorCode: 19 };

    private static Exception Translate(Exception ex)
    {
        var sqlite = ex as SqliteException ?? ex.InnerException as SqliteException;
        // 2067 = SQLITE_CONSTRAINT_UNIQUE, 1555 = SQLITE_CONSTRAINT_PRIMARYKEY
        if (sqlite is { SqliteExtendedErrorCode: 2067 or 1555 })
            return new DuplicateKeyException(sqlite.Message, ex);
        return ex;
    }

    public async ValueTask DisposeAsync()
    {
        // Drain: everything queued before shutdown is still committed and answered.
        _queue.Writer.TryComplete();
        try
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("The store writer did not drain within 30 s; unanswered writes were not acknowledged");
        }
        catch (Exception ex) when (!_initializer.IsInitialized)
        {
            // A start-up that failed (a bad setting) disposes the host while the loop is still opening the store;
            // rethrowing here would hide the start-up error behind this one.
            _logger.LogDebug(ex, "The store writer stopped before the store was ready");
        }
    }

    private sealed class PendingCommit(WriteSet writes)
    {
        public WriteSet Writes { get; } = writes;
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
