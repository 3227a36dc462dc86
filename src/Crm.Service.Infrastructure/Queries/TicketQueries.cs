using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Queries;

/// <summary>
/// The read side of tickets for the REST API and the console. Reads go to the store through short-lived, untracked
/// contexts and never through grains: grains are the writers, and a queue view must not activate a grain per row.
/// Every list is keyset-paged newest first, so a page costs the same at the end of a long list as at its start and
/// no query counts a table.
/// </summary>
public sealed class TicketQueries(IDbContextFactory<CrmDbContext> contexts)
{
    /// <summary>Tickets in the order an agent works a queue: most recent activity first, ties by number.</summary>
    public async Task<Page<TicketView>> ListAsync(TicketFilter filter, TicketCursor? after, int pageSize, CancellationToken cancellationToken) =>
        await ListAsync(filter, TicketSort.Updated, after is { } c ? new QueueCursor(TicketSort.Updated, c.UpdatedAt, default, c.Number) : null, pageSize, cancellationToken);

    /// <summary>Tickets in the given order, keyset-paged: the next page starts after <paramref name="after"/> (of the same order).</summary>
    public async Task<Page<TicketView>> ListAsync(TicketFilter filter, TicketSort sort, QueueCursor? after, int pageSize, CancellationToken cancellationToken)
    {
        if (after is { } given && given.Sort != sort)
            throw new ArgumentException("The cursor belongs to another order.", nameof(after));
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var parts = Parts(db, filter, sort, after);
        // Several parts are read in one deferred transaction: one WAL snapshot for all of them, without the write lock
        // (EF's own transaction is BEGIN IMMEDIATE). Otherwise a ticket that moves from one part to another between two
        // reads shows twice or not at all (review routing2-console3 N7).
        await using var snapshot = parts.Count > 1 ? await ReadSnapshotAsync(db, cancellationToken) : null;
        // One row more than the page tells whether there is a next page without counting the queue.
        var rows = new List<TicketRecord>();
        foreach (var part in parts)
            rows.AddRange(await part.Take(pageSize + 1).ToListAsync(cancellationToken));
        rows.Sort(Order(sort));
        var page = rows.Take(pageSize).ToList();
        var names = await CustomerNamesAsync(db, page.Select(t => t.CustomerId), cancellationToken);
        var next = rows.Count > pageSize ? CursorAfter(page[^1], sort).Encode() : null;
        return new Page<TicketView>(page.Select(t => ToView(t, names.GetValueOrDefault(t.CustomerId))).ToList(), next);
    }

    /// <summary>A read-only deferred transaction on the context's connection (a WAL snapshot from its first read),
    /// rolled back when disposed.</summary>
    private static async Task<IAsyncDisposable> ReadSnapshotAsync(CrmDbContext db, CancellationToken cancellationToken)
    {
        await db.Database.OpenConnectionAsync(cancellationToken);
        var transaction = ((Microsoft.Data.Sqlite.SqliteConnection)db.Database.GetDbConnection()).BeginTransaction(deferred: true);
        await db.Database.UseTransactionAsync(transaction, cancellationToken);
        return new ReadSnapshot(db, transaction);
    }

    private sealed class ReadSnapshot(CrmDbContext db, System.Data.Common.DbTransaction transaction) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await db.Database.UseTransactionAsync(null);
            await transaction.DisposeAsync();
        }
    }

    /// <summary>Most parts one page reads (statuses × teams); past it the queue is one query that sorts its rows.</summary>
    internal const int MaxParts = 16;

    /// <summary>
    /// The queue as one query per status (and per team of "My teams"), each an equality on an index that holds the sort
    /// key next, so each reads its first rows in order; the page is the newest of their merged rows. A single query
    /// with <c>Status IN (…)</c> would read every matching row and sort them for each page (SQLite does not merge an
    /// IN list's ranges in order). Tag and channel filters keep one query (their projection drives the order).
    /// </summary>
    internal static IReadOnlyList<IQueryable<TicketRecord>> Parts(CrmDbContext db, TicketFilter filter, TicketSort sort, QueueCursor? after)
    {
        IReadOnlyList<TicketStatus?> statuses = filter is { Status: null, Statuses.Count: > 1 } ? [.. filter.Statuses.Distinct().Select(s => (TicketStatus?)s)] : [null];
        // Distinct: a status or team named twice would otherwise read (and show) its tickets twice.
        IReadOnlyList<string?> teams = filter is { Team: null, AnyOfTeams.Count: > 0 } ? [.. filter.AnyOfTeams.Distinct(StringComparer.Ordinal)] : [null];
        if ((statuses.Count == 1 && teams.Count == 1) || statuses.Count * teams.Count > MaxParts || filter.Tag is not null || filter.Channel is not null)
            return [Queue(db, filter, sort, after)];
        var parts = new List<IQueryable<TicketRecord>>();
        foreach (var status in statuses)
            foreach (var team in teams)
                parts.Add(Queue(db, filter with
                {
                    Status = status ?? filter.Status,
                    Statuses = status is null ? filter.Statuses : null,
                    Team = team ?? filter.Team,
                    AnyOfTeams = team is null ? filter.AnyOfTeams : null,
                }, sort, after));
        return parts;
    }

    /// <summary>The queue order in memory, as the queries sort (newest first, ties by number).</summary>
    private static Comparison<TicketRecord> Order(TicketSort sort) => sort switch
    {
        TicketSort.Created => (a, b) => b.CreatedAt.CompareTo(a.CreatedAt) is var c and not 0 ? c : b.Number.CompareTo(a.Number),
        TicketSort.Priority => (a, b) => b.Priority.CompareTo(a.Priority) is var p and not 0 ? p
            : b.UpdatedAt.CompareTo(a.UpdatedAt) is var c and not 0 ? c : b.Number.CompareTo(a.Number),
        _ => (a, b) => b.UpdatedAt.CompareTo(a.UpdatedAt) is var c and not 0 ? c : b.Number.CompareTo(a.Number),
    };

    internal static QueueCursor CursorAfter(TicketRecord last, TicketSort sort) =>
        new(sort, sort == TicketSort.Created ? last.CreatedAt : last.UpdatedAt, last.Priority, last.Number);

    /// <summary>The queue query before its limit; internal so that tests can read its plan.</summary>
    internal static IQueryable<TicketRecord> Queue(CrmDbContext db, TicketFilter filter, TicketCursor? after) =>
        Queue(db, filter, TicketSort.Updated, after is { } c ? new QueueCursor(TicketSort.Updated, c.UpdatedAt, default, c.Number) : null);

    internal static IQueryable<TicketRecord> Queue(CrmDbContext db, TicketFilter filter, TicketSort sort, QueueCursor? after)
    {
        var query = db.Tickets.AsNoTracking();
        if (filter.Status is { } status)
            query = query.Where(t => t.Status == status);
        if (filter.Statuses is { Count: > 0 } statuses)
            query = query.Where(t => statuses.Contains(t.Status));
        if (filter.Assignee is { } assignee)
            query = assignee.Length == 0 ? query.Where(t => t.Assignee == null) : query.Where(t => t.Assignee == assignee);
        if (filter.Team is { } team)
            query = team.Length == 0 ? query.Where(t => t.Team == null) : query.Where(t => t.Team == team);
        if (filter.AnyOfTeams is { } teams)
            query = query.Where(t => t.Team != null && teams.Contains(t.Team));
        if (filter.HiddenTeams is { Count: > 0 } hidden)
            query = query.Where(t => t.Team == null || !hidden.Contains(t.Team));
        if (filter.CustomerId is { } customer)
            query = query.Where(t => t.CustomerId == customer);
        if (filter.Priority is { } priority)
            query = query.Where(t => t.Priority == priority);
        // Tag and channel come from their projections (TicketProjections), never from the JSON column or a probe of
        // Messages per ticket: a rare tag would otherwise walk the whole table to fill a page.
        if (filter.Tag is { } tag && filter.Channel is { } both)
            query = query.Where(t => db.TicketChannels.Any(c => c.TicketNumber == t.Number && c.ChannelAccountId == both));
        if (sort == TicketSort.Updated && (filter.Tag ?? filter.Channel) is not null)
        {
            // The projection's (key, UpdatedAt, TicketNumber) index drives the page in order; tickets are read by number.
            var keys = filter.Tag is { } byTag
                ? db.TicketTags.Where(x => x.Tag == byTag).Select(x => new ProjectedKey { UpdatedAt = x.UpdatedAt, Number = x.TicketNumber })
                : db.TicketChannels.Where(x => x.ChannelAccountId == filter.Channel).Select(x => new ProjectedKey { UpdatedAt = x.UpdatedAt, Number = x.TicketNumber });
            if (after is { } k)
            {
                var at = k.At;
                var number = k.Number;
                keys = keys.Where(x => x.UpdatedAt <= at && (x.UpdatedAt < at || x.Number < number));
            }
            return from x in keys
                   join t in query on x.Number equals t.Number
                   orderby x.UpdatedAt descending, x.Number descending
                   select t;
        }
        if (filter.Tag is { } tagged)
            query = query.Where(t => db.TicketTags.Where(x => x.Tag == tagged).Select(x => x.TicketNumber).Contains(t.Number));
        else if (filter.Channel is { } channel)
            query = query.Where(t => db.TicketChannels.Where(x => x.ChannelAccountId == channel).Select(x => x.TicketNumber).Contains(t.Number));
        switch (sort)
        {
            case TicketSort.Created:
                if (after is { } created)
                {
                    var at = created.At;
                    var number = created.Number;
                    query = query.Where(t => t.CreatedAt <= at && (t.CreatedAt < at || t.Number < number));
                }
                return query.OrderByDescending(t => t.CreatedAt).ThenByDescending(t => t.Number);
            case TicketSort.Priority:
                if (after is { } ranked)
                {
                    var p = ranked.Priority;
                    var at = ranked.At;
                    var number = ranked.Number;
                    query = query.Where(t => t.Priority <= p && (t.Priority < p || t.UpdatedAt < at || (t.UpdatedAt == at && t.Number < number)));
                }
                return query.OrderByDescending(t => t.Priority).ThenByDescending(t => t.UpdatedAt).ThenByDescending(t => t.Number);
            default:
                if (after is { } c)
                {
                    var at = c.At;
                    var number = c.Number;
                    // The redundant "UpdatedAt <= at" gives SQLite a range on the index's sort column; the OR alone would not.
                    query = query.Where(t => t.UpdatedAt <= at && (t.UpdatedAt < at || t.Number < number));
                }
                return query.OrderByDescending(t => t.UpdatedAt).ThenByDescending(t => t.Number);
        }
    }

    private sealed class ProjectedKey
    {
        public DateTimeOffset UpdatedAt { get; init; }
        public long Number { get; init; }
    }

    public async Task<TicketView?> GetAsync(long number, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await GetAsync(db, number, cancellationToken);
    }

    /// <summary>The ticket with the newest page of its timeline and of its history.</summary>
    public async Task<TicketDetailsView?> GetDetailsAsync(long number, int timelineSize, int historySize, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // Three reads without a shared transaction: EF's default SQLite transaction is BEGIN IMMEDIATE, which would take
        // the write lock from the group commit. A change landing between the reads shows on the next refresh.
        if (await GetAsync(db, number, cancellationToken) is not { } ticket)
            return null;
        var timeline = await TimelineAsync(db, number, null, timelineSize, cancellationToken);
        var history = await HistoryAsync(db, number, null, historySize, cancellationToken);
        return new TicketDetailsView(ticket, timeline.Items, timeline.NextCursor, history.Items, history.NextCursor);
    }

    /// <summary>Messages and notes, newest first; null if there is no such ticket.</summary>
    public async Task<Page<TimelineEntry>?> TimelineAsync(long number, EntryCursor? before, int pageSize, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (!await db.Tickets.AnyAsync(t => t.Number == number, cancellationToken))
            return null;
        return await TimelineAsync(db, number, before, pageSize, cancellationToken);
    }

    /// <summary>Audit entries, newest first; null if there is no such ticket.</summary>
    public async Task<Page<AuditEntryView>?> HistoryAsync(long number, EntryCursor? before, int pageSize, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (!await db.Tickets.AnyAsync(t => t.Number == number, cancellationToken))
            return null;
        return await HistoryAsync(db, number, before, pageSize, cancellationToken);
    }

    internal static IQueryable<MessageRecord> Timeline(CrmDbContext db, long number, EntryCursor? before)
    {
        var query = db.Messages.AsNoTracking().Where(m => m.TicketNumber == number);
        if (before is { } c)
        {
            var at = c.At;
            var id = c.Id;
            query = query.Where(m => m.CreatedAt <= at && (m.CreatedAt < at || m.Id.CompareTo(id) < 0));
        }
        return query.OrderByDescending(m => m.CreatedAt).ThenByDescending(m => m.Id);
    }

    internal static IQueryable<AuditRecord> History(CrmDbContext db, long number, EntryCursor? before)
    {
        var key = number.ToString(CultureInfo.InvariantCulture);
        var query = db.Audit.AsNoTracking().Where(a => a.EntityType == "ticket" && a.EntityId == key);
        if (before is { } c)
        {
            var at = c.At;
            var id = c.Id;
            query = query.Where(a => a.At <= at && (a.At < at || a.Id.CompareTo(id) < 0));
        }
        return query.OrderByDescending(a => a.At).ThenByDescending(a => a.Id);
    }

    private static async Task<TicketView?> GetAsync(CrmDbContext db, long number, CancellationToken cancellationToken)
    {
        var ticket = await db.Tickets.AsNoTracking().FirstOrDefaultAsync(t => t.Number == number, cancellationToken);
        if (ticket is null)
            return null;
        var name = await db.Customers.AsNoTracking().Where(c => c.Id == ticket.CustomerId).Select(c => c.Name).FirstOrDefaultAsync(cancellationToken);
        return ToView(ticket, name);
    }

    private static async Task<Page<TimelineEntry>> TimelineAsync(CrmDbContext db, long number, EntryCursor? before, int pageSize, CancellationToken cancellationToken)
    {
        var rows = await Timeline(db, number, before).Take(pageSize + 1).ToListAsync(cancellationToken);
        var page = rows.Take(pageSize).ToList();
        // Attachments of this page's messages only: a long ticket's older files are loaded with their page.
        var ids = page.Where(m => m.AttachmentCount > 0).Select(m => m.Id).ToList();
        var attachments = ids.Count == 0
            ? Enumerable.Empty<AttachmentRecord>().ToLookup(a => a.MessageId)
            : (await db.Attachments.AsNoTracking().Where(a => ids.Contains(a.MessageId)).OrderBy(a => a.Id).ToListAsync(cancellationToken)).ToLookup(a => a.MessageId);
        var conversationIds = page.Where(m => m.ConversationId is not null).Select(m => m.ConversationId!.Value).Distinct().ToList();
        var kinds = conversationIds.Count == 0
            ? new Dictionary<Guid, ChannelKind>()
            : await db.Conversations.AsNoTracking().Where(c => conversationIds.Contains(c.Id)).ToDictionaryAsync(c => c.Id, c => c.Channel, cancellationToken);
        var next = rows.Count > pageSize ? new EntryCursor(page[^1].CreatedAt, page[^1].Id).Encode(CursorKind.Timeline) : null;
        return new Page<TimelineEntry>(page.Select(m => ToEntry(m, attachments[m.Id]) with
        {
            ChannelKind = m.ConversationId is { } c && kinds.TryGetValue(c, out var kind) ? kind : null,
        }).ToList(), next);
    }

    private static async Task<Page<AuditEntryView>> HistoryAsync(CrmDbContext db, long number, EntryCursor? before, int pageSize, CancellationToken cancellationToken)
    {
        var rows = await History(db, number, before).Take(pageSize + 1).ToListAsync(cancellationToken);
        var page = rows.Take(pageSize).ToList();
        var next = rows.Count > pageSize ? new EntryCursor(page[^1].At, page[^1].Id).Encode(CursorKind.History) : null;
        return new Page<AuditEntryView>(page.Select(a => new AuditEntryView(a.At, a.Actor, a.Action, a.Field, a.OldValue, a.NewValue)).ToList(), next);
    }

    internal static async Task<Dictionary<Guid, string?>> CustomerNamesAsync(CrmDbContext db, IEnumerable<Guid> customerIds, CancellationToken cancellationToken)
    {
        var ids = customerIds.Distinct().ToList();
        if (ids.Count == 0)
            return [];
        return await db.Customers.AsNoTracking().Where(c => ids.Contains(c.Id)).ToDictionaryAsync(c => c.Id, c => c.Name, cancellationToken);
    }

    internal static TicketView ToView(TicketRecord t, string? customerName) => new()
    {
        Number = t.Number,
        Subject = t.Subject,
        Status = t.Status,
        Priority = t.Priority,
        Team = t.Team,
        Assignee = t.Assignee,
        Tags = [.. t.Tags],
        CustomerId = t.CustomerId,
        CustomerName = customerName,
        ConversationIds = [.. t.ConversationIds],
        CreatedAt = t.CreatedAt,
        UpdatedAt = t.UpdatedAt,
        ResolvedAt = t.ResolvedAt,
        ClosedAt = t.ClosedAt,
        FollowUpOf = t.FollowUpOf,
        MergedInto = t.MergedInto,
        FirstResponseAt = t.FirstResponseAt,
        LastCustomerMessageAt = t.LastCustomerMessageAt,
    };

    private static TimelineEntry ToEntry(MessageRecord m, IEnumerable<AttachmentRecord> attachments) => new()
    {
        Id = m.Id,
        ConversationId = m.ConversationId,
        TicketNumber = m.TicketNumber,
        Direction = m.Direction,
        ExternalId = m.ExternalId ?? m.OutboundExternalId,
        Author = m.Author,
        Subject = m.Subject,
        Text = m.Text,
        Html = m.Html,
        CreatedAt = m.CreatedAt,
        SentAt = m.SentAt,
        Delivery = m.Delivery,
        DeliveryError = m.DeliveryError,
        Channel = m.ChannelAccountId,
        Attachments = attachments.OrderBy(a => a.FileName, StringComparer.Ordinal)
            .Select(a => new AttachmentView(a.Id, a.FileName, a.ContentType, a.Length, a.Sha256)).ToList(),
        Cc = m.Cc?.Split('\n', StringSplitOptions.RemoveEmptyEntries) ?? [],
    };
}
