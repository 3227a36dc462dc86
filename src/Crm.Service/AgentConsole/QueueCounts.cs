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
    /// <summary>Not resolved or closed, in one of my teams.</summary>
    Teams,
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

    /// <summary>The read-model filter of a queue for <paramref name="me"/> (the assignee name of the signed-in person)
    /// and <paramref name="myTeams"/> (the teams they are in).</summary>
    public static TicketFilter Filter(ConsoleQueue queue, string me, IReadOnlyList<string>? myTeams = null) => queue switch
    {
        ConsoleQueue.Mine => new TicketFilter { Assignee = me, Statuses = NotDone },
        ConsoleQueue.Teams => new TicketFilter { AnyOfTeams = myTeams ?? [], Statuses = NotDone },
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
    /// <summary>Not resolved or closed, in one of my teams.</summary>
    public int MyTeams { get; init; }

    public int Of(ConsoleQueue queue) => queue switch
    {
        ConsoleQueue.Mine => Mine,
        ConsoleQueue.Teams => MyTeams,
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
    private readonly record struct TicketState(TicketStatus Status, string? Assignee, string? Team);

    /// <summary>The counters of one team ("" = no team), so a person's view can leave out restricted teams they are not in.</summary>
    private sealed class TeamCounters
    {
        public readonly Dictionary<string, int> Mine = new(StringComparer.Ordinal);
        public int Unassigned;
        public int Open;
        public int Pending;
    }

    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _loading = new(1, 1);
    // Replaced whole by a reload; changed in place under _lock otherwise.
    private Dictionary<long, TicketState> _working = [];
    private Dictionary<string, TeamCounters> _teams = new(StringComparer.Ordinal);
    private long _total;
    private long _appliedUpTo;
    // The newest change handed to ApplyAsync (not a load's snapshot): a batch handed again after its push failed finds its
    // "created" changes at or below it, and they are not news twice (its notices were kept unsent by LiveConsoleFeed).
    private long _handedUpTo;
    private bool _loaded;

    public Task<QueueCountsView> GetAsync(string me, CancellationToken cancellationToken) => GetAsync(me, [], [], cancellationToken);

    /// <summary>The sizes as <paramref name="me"/> sees them: tickets of <paramref name="hiddenTeams"/> leave every working
    /// queue. Closed is the number of all resolved and closed tickets (done tickets are not kept per team).</summary>
    public async Task<QueueCountsView> GetAsync(string me, IReadOnlyCollection<string> myTeams, IReadOnlyCollection<string> hiddenTeams, CancellationToken cancellationToken)
    {
        await EnsureLoadedAsync(cancellationToken);
        lock (_lock)
        {
            int mine = 0, unassigned = 0, open = 0, pending = 0, teams = 0;
            foreach (var (team, counters) in _teams)
            {
                if (team.Length > 0 && hiddenTeams.Contains(team))
                    continue;
                mine += counters.Mine.GetValueOrDefault(me);
                unassigned += counters.Unassigned;
                open += counters.Open;
                pending += counters.Pending;
                if (team.Length > 0 && myTeams.Contains(team))
                    teams += counters.Open + counters.Pending;
            }
            return new QueueCountsView(mine, unassigned, open, pending, (int)(_total - _working.Count)) { MyTeams = teams };
        }
    }

    /// <summary>What a batch changed that people are told about: the unfinished tickets whose assignee became someone
    /// (assigned, reassigned, or reopened with an assignee), and the new tickets that came into a team (created in it,
    /// or moved there by routing a moment later).</summary>
    public sealed record Applied(IReadOnlyList<(long Number, string Assignee)> Assigned, IReadOnlyList<(long Number, string Team)> NewInTeam);

    /// <summary>Applies a batch of the change feed. A replayed change finds the same state and reports nothing.</summary>
    public async Task<Applied> ApplyAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        await EnsureLoadedAsync(cancellationToken);
        var tickets = changes.Where(c => c.Entity == ChangeEntities.Ticket)
            .Select(c => (Change: c, Number: long.Parse(c.EntityId, CultureInfo.InvariantCulture))).ToList();
        var assigned = new List<(long, string)>();
        var newInTeam = new List<(long, string)>();
        if (tickets.Count == 0)
            return new Applied(assigned, newInTeam);
        var numbers = tickets.Select(t => t.Number).Distinct().ToList();
        Dictionary<long, TicketState> current;
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            current = await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number))
                .Select(t => new { t.Number, t.Status, t.Assignee, t.Team })
                .ToDictionaryAsync(t => t.Number, t => new TicketState(t.Status, t.Assignee, t.Team), cancellationToken);
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
            var fresh = tickets.Where(t => t.Change.Sequence > _appliedUpTo).Select(t => t.Number).ToHashSet();
            // Created in this batch is news even when the ticket is already known: a page view can load the counts
            // between its commit and this batch (and a node's first load is newer than its feed cursor).
            var created = tickets.Where(t => t.Change.Kind == ChangeKinds.Created && t.Change.Sequence > _handedUpTo).Select(t => t.Number).ToHashSet();
            foreach (var number in numbers)
            {
                var known = _working.Remove(number, out var before);
                if (known)
                    Count(before, -1);
                if (current.TryGetValue(number, out var after) && !ConsoleQueues.IsDone(after.Status))
                {
                    _working[number] = after;
                    Count(after, +1);
                    if (after.Assignee is { } assignee && (created.Contains(number) || (known ? before.Assignee != assignee : fresh.Contains(number))))
                        assigned.Add((number, assignee));
                    // A ticket an agent answered within the feed's lag is Open, and still new to the team.
                    if (after.Team is { } team && (created.Contains(number) || (after.Status == TicketStatus.New && (known ? before.Team != team : fresh.Contains(number)))))
                        newInTeam.Add((number, team));
                }
            }
            _appliedUpTo = Math.Max(_appliedUpTo, changes[^1].Sequence);
            _handedUpTo = Math.Max(_handedUpTo, changes[^1].Sequence);
        }
        return new Applied(assigned, newInTeam);
    }

    /// <summary>Takes the counts from the store again (the change feed lost changes this node had not applied).</summary>
    public async Task ReloadAsync(CancellationToken cancellationToken)
    {
        await _loading.WaitAsync(cancellationToken);
        try
        {
            await store.EnsureInitializedAsync(cancellationToken);
            await LoadAsync(cancellationToken);
            Volatile.Write(ref _loaded, true);
        }
        finally
        {
            _loading.Release();
        }
    }

    private void Count(TicketState state, int delta) => Count(_teams, state, delta);

    private static void Count(Dictionary<string, TeamCounters> teams, TicketState state, int delta)
    {
        var key = state.Team ?? "";
        if (!teams.TryGetValue(key, out var counters))
            teams[key] = counters = new TeamCounters();
        if (state.Status is TicketStatus.New or TicketStatus.Open)
        {
            counters.Open += delta;
            if (state.Assignee is null)
                counters.Unassigned += delta;
        }
        else
        {
            counters.Pending += delta;
        }
        if (state.Assignee is { } assignee)
        {
            var mine = counters.Mine.GetValueOrDefault(assignee) + delta;
            if (mine == 0)
                counters.Mine.Remove(assignee);
            else
                counters.Mine[assignee] = mine;
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

    /// <summary>Builds the counts aside and swaps them in, so a reload never shows a half-counted queue.</summary>
    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(cancellationToken);
        var working = new Dictionary<long, TicketState>();
        var teams = new Dictionary<string, TeamCounters>(StringComparer.Ordinal);
        long sequence, total;
        // A deferred transaction: a WAL snapshot for the three reads that never takes the write lock.
        await ExecuteAsync(connection, "BEGIN DEFERRED", cancellationToken);
        try
        {
            // AUTOINCREMENT's high-water mark, not MAX(Sequence): that is 0 once the feed is pruned empty, and a batch
            // read before this snapshot would then count its "created" tickets a second time.
            sequence = await StoreInitializer.FeedHeadAsync(db, cancellationToken);
            total = await ScalarAsync(connection, "SELECT COUNT(*) FROM Tickets", cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = $"SELECT Number, Status, Assignee, Team FROM Tickets WHERE Status NOT IN ({(int)TicketStatus.Resolved}, {(int)TicketStatus.Closed})";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var state = new TicketState((TicketStatus)reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3));
                working[reader.GetInt64(0)] = state;
                Count(teams, state, +1);
            }
        }
        finally
        {
            await ExecuteAsync(connection, "COMMIT", CancellationToken.None);
        }
        lock (_lock)
        {
            _appliedUpTo = sequence;
            _total = total;
            _working = working;
            _teams = teams;
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
