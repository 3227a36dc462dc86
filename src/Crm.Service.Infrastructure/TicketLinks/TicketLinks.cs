using System.Globalization;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.TicketLinks;

/// <summary>Two tickets linked by an agent. "related" is symmetric and stored with <see cref="From"/> the lower number;
/// "duplicate" reads "<see cref="From"/> is a duplicate of <see cref="To"/>". One row per pair, whichever the direction.</summary>
public sealed class TicketLinkRecord
{
    public long From { get; set; }
    public long To { get; set; }
    public required string Relation { get; set; }
    public required string CreatedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

public static class TicketLinkRelations
{
    public const string Related = "related";
    public const string Duplicate = "duplicate";

    public static bool IsValid(string? relation) => relation is Related or Duplicate;
}

/// <summary>A link as one ticket sees it: the other ticket and how it relates to this one ("related", "duplicate-of":
/// this ticket duplicates the other, "duplicated-by": the other duplicates this one).</summary>
public sealed record TicketLinkView(long Ticket, string Relation, string? Subject, string? Team, string CreatedBy, DateTimeOffset CreatedAt);

public enum LinkOutcome
{
    Created,
    /// <summary>The same link was already there: nothing changed.</summary>
    Existing,
    /// <summary>The pair is already linked with another relation (unlink first).</summary>
    Conflict,
    Removed,
    Missing,
}

/// <summary>Links between tickets, with an audit row on both tickets in the same commit as the link.</summary>
public sealed class TicketLinkStore(IDbContextFactory<CrmDbContext> contexts, Changes.ChangeFeedSignal signal, TimeProvider time)
{
    /// <summary>The audit fields whose old or new value names another ticket: the link rows ("#n") and the merge, split
    /// and follow-up rows of the ticket grain (a bare "n"; splitFrom keeps it in OldValue, review CS1).</summary>
    private static readonly string[] TicketFields = ["related", "duplicate-of", "duplicated-by", "mergedInto", "mergedFrom", "splitFrom", "splitInto", "followUpOf"];

    /// <summary>The ticket numbers a history row names, in either value, with or without "#".</summary>
    private static IEnumerable<long> Named(Queries.AuditEntryView e)
    {
        if (e.Field is not { } field || !TicketFields.Contains(field, StringComparer.Ordinal))
            yield break;
        foreach (var value in new[] { e.OldValue, e.NewValue })
            if (value is { Length: > 0 } && long.TryParse(value.AsSpan(value[0] == '#' ? 1 : 0), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                yield return n;
    }

    /// <summary>
    /// History without the rows that name a ticket of a hidden team: a restricted ticket is not even a number to
    /// those outside its team (reviews CT1, CS1), so "linked related → #n", "merged into n", "split into n" or
    /// "follow-up of n" are left out for them, in the console and the API.
    /// </summary>
    public async Task<IReadOnlyList<Queries.AuditEntryView>> HideRestrictedLinksAsync(IReadOnlyList<Queries.AuditEntryView> entries,
        IReadOnlyCollection<string> hiddenTeams, CancellationToken cancellationToken)
    {
        if (hiddenTeams.Count == 0)
            return entries;
        var hidden = await HiddenNumbersAsync(entries.SelectMany(Named), hiddenTeams, cancellationToken);
        return hidden.Count == 0 ? entries : [.. entries.Where(e => !Named(e).Any(hidden.Contains))];
    }

    /// <summary>The ticket without the numbers of hidden tickets it names (merged into, follow-up of), review CS1.</summary>
    public async Task<Queries.TicketView> HideRestrictedNumbersAsync(Queries.TicketView ticket, IReadOnlyCollection<string> hiddenTeams, CancellationToken cancellationToken)
    {
        if (hiddenTeams.Count == 0 || (ticket.MergedInto is null && ticket.FollowUpOf is null))
            return ticket;
        var hidden = await HiddenNumbersAsync(new[] { ticket.MergedInto, ticket.FollowUpOf }.OfType<long>(), hiddenTeams, cancellationToken);
        return hidden.Count == 0 ? ticket : ticket with
        {
            MergedInto = ticket.MergedInto is { } m && hidden.Contains(m) ? null : ticket.MergedInto,
            FollowUpOf = ticket.FollowUpOf is { } f && hidden.Contains(f) ? null : ticket.FollowUpOf,
        };
    }

    private async Task<HashSet<long>> HiddenNumbersAsync(IEnumerable<long> named, IReadOnlyCollection<string> hiddenTeams, CancellationToken cancellationToken)
    {
        var numbers = named.Distinct().ToList();
        if (numbers.Count == 0)
            return [];
        var teams = hiddenTeams.ToList();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return (await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number) && t.Team != null && teams.Contains(t.Team))
            .Select(t => t.Number).ToListAsync(cancellationToken)).ToHashSet();
    }

    /// <summary>Links <paramref name="number"/> to <paramref name="other"/>; for "duplicate", <paramref name="number"/> is the duplicate.</summary>
    public async Task<LinkOutcome> LinkAsync(long number, long other, string relation, string actor, CancellationToken cancellationToken)
    {
        var (from, to) = relation == TicketLinkRelations.Related ? (Math.Min(number, other), Math.Max(number, other)) : (number, other);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // The check and the insert hold the store's write lock (SQLite's BEGIN IMMEDIATE, across every node on the file):
        // the key (From, To) tells nothing of (To, From), so "A related B" racing "B duplicate of A" would otherwise
        // store both rows for one pair (review CT7). Of two opposite requests the second finds the first's row.
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        if (await FindAsync(db, number, other, cancellationToken) is { } existing)
            return existing.From == from && existing.To == to && existing.Relation == relation ? LinkOutcome.Existing : LinkOutcome.Conflict;
        var now = time.GetUtcNow();
        db.TicketLinks.Add(new TicketLinkRecord { From = from, To = to, Relation = relation, CreatedBy = actor, CreatedAt = now });
        db.Audit.Add(AuditRow(number, "linked", actor, now, relation == TicketLinkRelations.Related ? "related" : "duplicate-of", other));
        db.Audit.Add(AuditRow(other, "linked", actor, now, relation == TicketLinkRelations.Related ? "related" : "duplicated-by", number));
        AddTicketChanges(db, now, number, other);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            signal.Notify();
            return LinkOutcome.Created;
        }
        catch (DbUpdateException ex) when (ex.InnerException is SqliteException { SqliteErrorCode: 19 })
        {
            // Two identical requests raced: the key kept one.
            await using var again = await contexts.CreateDbContextAsync(cancellationToken);
            var winner = await FindAsync(again, number, other, cancellationToken);
            return winner is not null && winner.From == from && winner.To == to && winner.Relation == relation ? LinkOutcome.Existing : LinkOutcome.Conflict;
        }
    }

    public async Task<LinkOutcome> UnlinkAsync(long number, long other, string actor, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (await FindAsync(db, number, other, cancellationToken) is not { } existing)
            return LinkOutcome.Missing;
        var now = time.GetUtcNow();
        db.TicketLinks.Remove(existing);
        db.Audit.Add(AuditRow(number, "unlinked", actor, now, Relation(existing, number), other));
        db.Audit.Add(AuditRow(other, "unlinked", actor, now, Relation(existing, other), number));
        AddTicketChanges(db, now, number, other);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            // Removed meanwhile by a twin request: the outcome is the same.
            return LinkOutcome.Missing;
        }
        signal.Notify();
        return LinkOutcome.Removed;
    }

    /// <summary>The tickets linked to <paramref name="number"/>, leaving out those of <paramref name="hiddenTeams"/>.</summary>
    public async Task<IReadOnlyList<TicketLinkView>> ListAsync(long number, IReadOnlyCollection<string> hiddenTeams, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = await db.TicketLinks.AsNoTracking().Where(l => l.From == number || l.To == number).Take(500).ToListAsync(cancellationToken);
        var others = rows.Select(l => l.From == number ? l.To : l.From).ToList();
        var tickets = await db.Tickets.AsNoTracking().Where(t => others.Contains(t.Number))
            .Select(t => new { t.Number, t.Subject, t.Team }).ToDictionaryAsync(t => t.Number, cancellationToken);
        return [.. rows.Select(l => (Link: l, Other: l.From == number ? l.To : l.From))
            .Where(x => tickets.TryGetValue(x.Other, out var t) && (t.Team is null || !hiddenTeams.Contains(t.Team)))
            .OrderBy(x => x.Other)
            .Select(x => new TicketLinkView(x.Other, Relation(x.Link, number), tickets[x.Other].Subject, tickets[x.Other].Team, x.Link.CreatedBy, x.Link.CreatedAt))];
    }

    /// <summary>A "ticket updated" change for both tickets in the link's commit: their panels are live for agents
    /// viewing either ticket on any node, as for every other change of a ticket (review CT15). The ticket rows are not
    /// written: the grains' copies stay true.</summary>
    private static void AddTicketChanges(CrmDbContext db, DateTimeOffset at, params long[] numbers)
    {
        foreach (var number in numbers)
            db.Changes.Add(new ChangeRecord
            {
                Entity = ChangeEntities.Ticket,
                EntityId = number.ToString(CultureInfo.InvariantCulture),
                Kind = ChangeKinds.Updated,
                At = at,
            });
    }

    private static Task<TicketLinkRecord?> FindAsync(CrmDbContext db, long a, long b, CancellationToken cancellationToken) =>
        db.TicketLinks.FirstOrDefaultAsync(l => (l.From == a && l.To == b) || (l.From == b && l.To == a), cancellationToken);

    private static string Relation(TicketLinkRecord link, long seenFrom) =>
        link.Relation == TicketLinkRelations.Related ? "related" : link.From == seenFrom ? "duplicate-of" : "duplicated-by";

    private static AuditRecord AuditRow(long number, string action, string actor, DateTimeOffset at, string field, long other) => new()
    {
        Id = Guid.CreateVersion7(at),
        EntityType = "ticket",
        EntityId = number.ToString(CultureInfo.InvariantCulture),
        Action = action,
        Actor = actor,
        At = at,
        Field = field,
        NewValue = "#" + other.ToString(CultureInfo.InvariantCulture),
    };
}
