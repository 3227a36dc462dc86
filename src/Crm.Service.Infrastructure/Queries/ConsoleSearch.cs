using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Queries;

/// <summary>What a search is for: the text, how many hits of each kind, and teams whose tickets (and their messages) must not show.</summary>
public sealed record SearchRequest(string Text, int Limit, IReadOnlyList<string> HiddenTeams);

public sealed record SearchHitTicket(long Number, string Subject, TicketStatus Status, DateTimeOffset UpdatedAt);

public sealed record SearchHitCustomer(Guid Id, string? Name, string? MatchedIdentity);

public sealed record SearchHitMessage(Guid Id, long TicketNumber, string Author, string Snippet, DateTimeOffset CreatedAt);

public sealed record SearchResults(IReadOnlyList<SearchHitTicket> Tickets, IReadOnlyList<SearchHitCustomer> Customers, IReadOnlyList<SearchHitMessage> Messages);

/// <summary>The console's search. The search issue replaces the engine (Lucene) behind this interface.</summary>
public interface IConsoleSearch
{
    Task<SearchResults> SearchAsync(SearchRequest request, CancellationToken cancellationToken);
}

/// <summary>
/// Search through indexed SQL until the search engine lands: a ticket by number (primary key), customers by name
/// prefix (the Name index, as a range) and by an identity's exact value (email, phone: the Value index), and message
/// text among the newest <see cref="MessageWindow"/> messages only (the (TicketNumber, CreatedAt) index gives no text
/// lookup, so the scan is bounded rather than over the whole table).
/// </summary>
public sealed class SqlConsoleSearch(IDbContextFactory<CrmDbContext> contexts) : IConsoleSearch
{
    public const int MessageWindow = 20_000;
    public const int MaxTextLength = 200;

    public async Task<SearchResults> SearchAsync(SearchRequest request, CancellationToken cancellationToken)
    {
        var text = request.Text.Trim();
        if (text.Length == 0 || text.Length > MaxTextLength)
            return new([], [], []);
        var hidden = request.HiddenTeams;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var tickets = new List<SearchHitTicket>();
        if (long.TryParse(text.TrimStart('#'), out var number))
            tickets.AddRange(await db.Tickets.AsNoTracking()
                .Where(t => t.Number == number && (t.Team == null || !hidden.Contains(t.Team)))
                .Select(t => new SearchHitTicket(t.Number, t.Subject, t.Status, t.UpdatedAt)).ToListAsync(cancellationToken));
        // A prefix as a range on the Name index (case-sensitive; the engine will fold case).
        var upper = text + "\uffff";
        var byName = await db.Customers.AsNoTracking()
            .Where(c => c.MergedInto == null && c.Name != null && string.Compare(c.Name, text) >= 0 && string.Compare(c.Name, upper) < 0)
            .OrderBy(c => c.Name).Take(request.Limit)
            .Select(c => new SearchHitCustomer(c.Id, c.Name, null)).ToListAsync(cancellationToken);
        var lowered = text.ToLowerInvariant();
        var byIdentity = await db.Identities.AsNoTracking().Where(i => i.Value == text || i.Value == lowered).Take(request.Limit)
            .Join(db.Customers, i => i.CustomerId, c => c.Id, (i, c) => new SearchHitCustomer(c.Id, c.Name, i.Value)).ToListAsync(cancellationToken);
        var customers = byIdentity.Concat(byName).DistinctBy(c => c.Id).Take(request.Limit).ToList();
        // Newest messages first, bounded; notes are internal but agents may search them too.
        var window = db.Messages.AsNoTracking().OrderByDescending(m => m.CreatedAt).Take(MessageWindow);
        var pattern = "%" + text.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_") + "%";
        var messages = await window
            .Where(m => (m.Text != null && EF.Functions.Like(m.Text, pattern, "\\")) || (m.Subject != null && EF.Functions.Like(m.Subject, pattern, "\\")))
            .Where(m => !db.Tickets.Any(t => t.Number == m.TicketNumber && t.Team != null && hidden.Contains(t.Team)))
            .Take(request.Limit)
            .Select(m => new { m.Id, m.TicketNumber, m.Author, m.Text, m.Subject, m.CreatedAt })
            .ToListAsync(cancellationToken);
        return new(tickets, customers, [.. messages.Select(m => new SearchHitMessage(m.Id, m.TicketNumber, m.Author, Snippet(m.Text ?? m.Subject ?? "", text), m.CreatedAt))]);
    }

    private static string Snippet(string body, string text)
    {
        var at = body.IndexOf(text, StringComparison.OrdinalIgnoreCase);
        var start = Math.Max(0, at - 60);
        var length = Math.Min(body.Length - start, 160);
        return (start > 0 ? "…" : "") + body.Substring(start, length) + (start + length < body.Length ? "…" : "");
    }
}
