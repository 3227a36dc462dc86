using System.Data.Common;
using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>The console's queues. "Mine" is the signed-in person's tickets that are not resolved or closed.</summary>
public enum ConsoleQueue
{
    Mine,
    Unassigned,
    Open,
    Pending,
    Closed,
}

public static class ConsoleQueues
{
    private static readonly TicketStatus[] Working = [TicketStatus.New, TicketStatus.Open];
    private static readonly TicketStatus[] Waiting = [TicketStatus.Pending, TicketStatus.OnHold];
    private static readonly TicketStatus[] Done = [TicketStatus.Resolved, TicketStatus.Closed];
    private static readonly TicketStatus[] NotDone = [.. Working, .. Waiting];

    /// <summary>The read-model filter of a queue for <paramref name="me"/> (the assignee name of the signed-in person).</summary>
    public static TicketFilter Filter(ConsoleQueue queue, string me) => queue switch
    {
        ConsoleQueue.Mine => new TicketFilter { Assignee = me, Statuses = NotDone },
        ConsoleQueue.Unassigned => new TicketFilter { Assignee = "", Statuses = Working },
        ConsoleQueue.Open => new TicketFilter { Statuses = Working },
        ConsoleQueue.Pending => new TicketFilter { Statuses = Waiting },
        _ => new TicketFilter { Statuses = Done },
    };

    public static bool IsDone(TicketStatus status) => status is TicketStatus.Resolved or TicketStatus.Closed;
}

/// <summary>Queue sizes as one agent sees them.</summary>
public sealed record QueueCountsView(int Mine, int Unassigned, int Open, int Pending, int Closed)
{
    public int Of(ConsoleQueue queue) => queue switch
    {
        ConsoleQueue.Mine => Mine,
        ConsoleQueue.Unassigned => Unassigned,
        ConsoleQueue.Open => Open,
        ConsoleQueue.Pending => Pending,
        _ => Closed,
    };
}

/// <summary>
/// Queue sizes kept in memory and moved as tickets change, from the change feed (<see cref="Hubs.LiveConsoleFeed"/>): a page
/// view never counts the Tickets table. At first use it reads, in one snapshot, the feed's last sequence, the number of
/// tickets and the (status, assignee) of every ticket not yet resolved or closed (the working set; done tickets are only
/// counted, as total minus working set). Afterwards each changed ticket is re-read by number, so applying a change twice,
/// late or out of order still leaves the counts equal to the store; only "created" after the snapshot grows the total.
/// </summary>
public sealed class QueueCounts(IDbContextFactory<CrmDbContext> contexts, StoreInitializer store)
{
    private readonly record struct TicketState(TicketStatus Status, string? Assignee);

    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _loading = new(1, 1);
    private readonly Dictionary<long, TicketState> _working = [];
    private readonly Dictionary<string, int> _mine = new(StringComparer.Ordinal);
    private int _unassigned;
    private int _open;
    private int _pending;
    private long _total;
    private long _appliedUpTo;
    private bool _loaded;

    public async Task<QueueCountsView> GetAsync(string me, CancellationToken cancellationToken)
    {
        await EnsureLoadedAsync(cancellationToken);
        lock (_lock)
            return View(me);
    }

    private QueueCountsView View(string me) =>
        new(_mine.GetValueOrDefault(me), _unassigned, _open, _pending, (int)(_total - _working.Count));

    /// <summary>Applies a batch of the change feed.</summary>
    public async Task ApplyAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        await EnsureLoadedAsync(cancellationToken);
        var tickets = changes.Where(c => c.Entity == ChangeEntities.Ticket)
            .Select(c => (Change: c, Number: long.Parse(c.EntityId, CultureInfo.InvariantCulture))).ToList();
        if (tickets.Count == 0)
            return;
        var numbers = tickets.Select(t => t.Number).Distinct().ToList();
        Dictionary<long, TicketState> current;
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            current = await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number))
                .Select(t => new { t.Number, t.Status, t.Assignee })
                .ToDictionaryAsync(t => t.Number, t => new TicketState(t.Status, t.Assignee), cancellationToken);
        }
        lock (_lock)
        {
            foreach (var (change, _) in tickets)
            {
                // A withdrawn ticket (opened for a copy of a message that lost the race) leaves the total again.
                if (change.Kind == ChangeKinds.Created && change.Sequence > _appliedUpTo)
                    _total++;
                else if (change.Kind == ChangeKinds.Withdrawn && change.Sequence > _appliedUpTo)
                    _total--;
            }
            foreach (var number in numbers)
            {
                if (_working.Remove(number, out var before))
                    Count(before, -1);
                if (current.TryGetValue(number, out var after) && !ConsoleQueues.IsDone(after.Status))
                {
                    _working[number] = after;
                    Count(after, +1);
                }
            }
            _appliedUpTo = Math.Max(_appliedUpTo, changes[^1].Sequence);
        }
    }

    private void Count(TicketState state, int delta)
    {
        if (state.Status is TicketStatus.New or TicketStatus.Open)
        {
            _open += delta;
            if (state.Assignee is null)
                _unassigned += delta;
        }
        else
        {
            _pending += delta;
        }
        if (state.Assignee is { } assignee)
        {
            _mine[assignee] = _mine.GetValueOrDefault(assignee) + delta;
        }
    }

    private async Task EnsureLoadedAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _loaded))
            return;
        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (_loaded)
                return;
            await store.EnsureInitializedAsync(cancellationToken);
            await LoadAsync(cancellationToken);
            Volatile.Write(ref _loaded, true);
        }
        finally
        {
            _loading.Release();
        }
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(cancellationToken);
        // A deferred transaction: a WAL snapshot for the three reads that never takes the write lock.
        await ExecuteAsync(connection, "BEGIN DEFERRED", cancellationToken);
        try
        {
            var sequence = await ScalarAsync(connection, "SELECT COALESCE(MAX(Sequence), 0) FROM Changes", cancellationToken);
            var total = await ScalarAsync(connection, "SELECT COUNT(*) FROM Tickets", cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = $"SELECT Number, Status, Assignee FROM Tickets WHERE Status NOT IN ({(int)TicketStatus.Resolved}, {(int)TicketStatus.Closed})";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            lock (_lock)
            {
                _appliedUpTo = sequence;
                _total = total;
            }
            while (await reader.ReadAsync(cancellationToken))
            {
                var state = new TicketState((TicketStatus)reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetString(2));
                lock (_lock)
                {
                    _working[reader.GetInt64(0)] = state;
                    Count(state, +1);
                }
            }
        }
        finally
        {
            await ExecuteAsync(connection, "COMMIT", CancellationToken.None);
        }
    }

    private static async Task ExecuteAsync(DbConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<long> ScalarAsync(DbConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
    }
}
