using System.Globalization;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Search;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.FullTextSearch;

/// <summary>Who is searching: whether they may see tickets, messages and customers at all, and which restricted
/// teams' tickets and messages they may not see.</summary>
public sealed record RecordAudience(bool SeesRecords, IReadOnlyList<string> HiddenTeams)
{
    public static readonly RecordAudience Nobody = new(false, []);
}

/// <summary>One hit, with what the store says now (subject, status, ticket) and the index's highlighted snippet
/// (HTML: encoded text, matches in &lt;mark&gt;).</summary>
public sealed record RecordHit(string Kind, string Id, string Title, string Snippet, long? TicketNumber, Guid? CustomerId, string? Status, string? Author, DateTimeOffset At);

public sealed record RecordResults(long Total, IReadOnlyList<RecordHit> Hits);

/// <summary>
/// The agents' full-text search over tickets, messages and customers (the records index). Restricted teams are
/// left out twice: the index filters on the team each document was indexed with, and every hit is then checked
/// against the store's current rows (its ticket's team now, whether it still exists), so a change the feed has not
/// indexed yet — a ticket just moved into a restricted team — never shows what the person may not see.
/// </summary>
public sealed class RecordSearch(IDbContextFactory<CrmDbContext> contexts, [FromKeyedServices(SearchExtensions.RecordsIndex)] ISearchIndex index,
    Crm.Service.Infrastructure.Changes.ChangeConsumerGates gates)
{
    /// <summary>The most pending ticket changes looked at for stale teams (the feed is normally seconds behind).</summary>
    private const int MaxPendingTickets = 5000;

    public const int MaxTextLength = 200;
    public const int MaxTake = 50;

    public async Task<RecordResults> SearchAsync(RecordAudience audience, string text, IReadOnlyList<string>? kinds, int skip, int take, CancellationToken cancellationToken)
    {
        if (!audience.SeesRecords || string.IsNullOrWhiteSpace(text))
            return new RecordResults(0, []);
        var wanted = kinds is { Count: > 0 } ? [.. kinds.Where(SearchKinds.Records.Contains)] : SearchKinds.Records;
        if (wanted.Count == 0)
            return new RecordResults(0, []);
        var results = await index.SearchAsync(new SearchQuery(text.Trim().TrimStart('#'))
        {
            Kinds = wanted,
            ExcludedTeams = audience.HiddenTeams,
            ExcludedIds = await StaleIdsAsync(audience, cancellationToken),
            Skip = Math.Clamp(skip, 0, SearchQuery.MaxSkip),
            Take = Math.Clamp(take, 1, MaxTake),
        }, cancellationToken);
        var hits = await CheckAsync(audience, results.Hits, cancellationToken);
        // Hits the store's check left out are not counted either (the count would tell that something hidden matches).
        return new RecordResults(Math.Max(hits.Count, results.Total - (results.Hits.Count - hits.Count)), hits);
    }

    /// <summary>
    /// The documents whose indexed team may be stale and is hidden from this person now: tickets with a change the
    /// records indexer has not handled yet (after its cursor) that are in a hidden team, and their messages. The engine
    /// leaves them out, so the total is counted on the same permission filter as the hits (the store's check below
    /// can only remove hits of the page, not the ones counted beyond it).
    /// </summary>
    private async Task<IReadOnlyList<string>> StaleIdsAsync(RecordAudience audience, CancellationToken cancellationToken)
    {
        if (audience.HiddenTeams.Count == 0)
            return [];
        var cursor = await gates.CursorAsync(RecordIndexer.NamePrefix + index.Identity, cancellationToken) ?? 0;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var pending = (await db.Changes.AsNoTracking().Where(c => c.Sequence > cursor && c.Entity == Crm.Service.Grains.Storage.ChangeEntities.Ticket)
                .OrderByDescending(c => c.Sequence).Select(c => c.EntityId).Take(MaxPendingTickets).ToListAsync(cancellationToken))
            .Select(id => long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : (long?)null).OfType<long>().Distinct().ToList();
        if (pending.Count == 0)
            return [];
        var hidden = audience.HiddenTeams.ToList();
        var numbers = await db.Tickets.AsNoTracking().Where(t => pending.Contains(t.Number) && t.Team != null && hidden.Contains(t.Team)).Select(t => t.Number).ToListAsync(cancellationToken);
        if (numbers.Count == 0)
            return [];
        var messageIds = await db.Messages.AsNoTracking().Where(m => numbers.Contains(m.TicketNumber)).Select(m => m.Id).ToListAsync(cancellationToken);
        return [.. numbers.Select(RecordIndexer.TicketId), .. messageIds.Select(RecordIndexer.MessageId)];
    }

    /// <summary>Keeps the hits the store still has and the person may see, in the index's order, with current data.</summary>
    private async Task<IReadOnlyList<RecordHit>> CheckAsync(RecordAudience audience, IReadOnlyList<SearchHit> hits, CancellationToken cancellationToken)
    {
        static string Key(SearchHit hit) => hit.Id[(hit.Id.IndexOf(':') + 1)..];
        var ticketNumbers = hits.Where(h => h.Kind == SearchKinds.Ticket)
            .Select(h => long.TryParse(Key(h), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : (long?)null).OfType<long>().ToList();
        var messageIds = hits.Where(h => h.Kind == SearchKinds.Message).Select(h => Guid.TryParse(Key(h), out var g) ? g : (Guid?)null).OfType<Guid>().ToList();
        var customerIds = hits.Where(h => h.Kind == SearchKinds.Customer).Select(h => Guid.TryParse(Key(h), out var g) ? g : (Guid?)null).OfType<Guid>().ToList();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var messages = await db.Messages.AsNoTracking().Where(m => messageIds.Contains(m.Id))
            .Select(m => new { m.Id, m.TicketNumber, m.Author, m.CreatedAt, m.Direction }).ToDictionaryAsync(m => m.Id, cancellationToken);
        var numbers = ticketNumbers.Concat(messages.Values.Select(m => m.TicketNumber)).Distinct().ToList();
        var tickets = await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number))
            .Select(t => new { t.Number, t.Subject, t.Status, t.Team, t.UpdatedAt }).ToDictionaryAsync(t => t.Number, cancellationToken);
        var customers = await db.Customers.AsNoTracking().Where(c => customerIds.Contains(c.Id) && c.MergedInto == null)
            .Select(c => new { c.Id, c.Name, c.UpdatedAt }).ToDictionaryAsync(c => c.Id, cancellationToken);
        bool Visible(string? team) => team is null || !audience.HiddenTeams.Contains(team, StringComparer.Ordinal);

        var checkedHits = new List<RecordHit>(hits.Count);
        foreach (var hit in hits)
        {
            switch (hit.Kind)
            {
                case SearchKinds.Ticket when long.TryParse(Key(hit), NumberStyles.None, CultureInfo.InvariantCulture, out var number)
                    && tickets.TryGetValue(number, out var ticket) && Visible(ticket.Team):
                    checkedHits.Add(new RecordHit(hit.Kind, hit.Id, ticket.Subject, hit.Snippet, number, null, ticket.Status.ToString(), null, ticket.UpdatedAt));
                    break;
                case SearchKinds.Message when Guid.TryParse(Key(hit), out var id) && messages.TryGetValue(id, out var message)
                    && tickets.TryGetValue(message.TicketNumber, out var parent) && Visible(parent.Team):
                    checkedHits.Add(new RecordHit(hit.Kind, hit.Id, parent.Subject, hit.Snippet, message.TicketNumber, null, message.Direction.ToString(), message.Author, message.CreatedAt));
                    break;
                case SearchKinds.Customer when Guid.TryParse(Key(hit), out var id) && customers.TryGetValue(id, out var customer):
                    checkedHits.Add(new RecordHit(hit.Kind, hit.Id, customer.Name ?? hit.Title, hit.Snippet, null, id, null, null, customer.UpdatedAt));
                    break;
            }
        }
        return checkedHits;
    }
}
