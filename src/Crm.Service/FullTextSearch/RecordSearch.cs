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
public sealed class RecordSearch(IDbContextFactory<CrmDbContext> contexts, [FromKeyedServices(SearchExtensions.RecordsIndex)] ISearchIndex index)
{
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
            Skip = Math.Clamp(skip, 0, SearchQuery.MaxSkip),
            Take = Math.Clamp(take, 1, MaxTake),
        }, cancellationToken);
        var hits = await CheckAsync(audience, results.Hits, cancellationToken);
        // Hits the store's check left out are not counted either (the count would tell that something hidden matches).
        return new RecordResults(Math.Max(hits.Count, results.Total - (results.Hits.Count - hits.Count)), hits);
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
