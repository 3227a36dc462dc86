using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Api;

/// <summary>Which follow-up entries a person may see: not those of a restricted team they are not in, by the entry's own
/// team or its ticket's team (RT3). One rule for the customer page and the API's lists and close (review FX2).</summary>
internal static class FollowUpReach
{
    public static async Task<IReadOnlyList<CustomerFollowUp>> VisibleAsync(IReadOnlyList<CustomerFollowUp> entries, IReadOnlyList<string> hidden,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        if (hidden.Count == 0 || entries.Count == 0)
            return entries;
        var ticketTeams = await TicketTeamsAsync(entries.Where(f => f.Ticket is not null).Select(f => f.Ticket!.Value).Distinct().ToList(), contexts, cancellationToken);
        return [.. entries.Where(f => Visible(f, hidden, ticketTeams))];
    }

    public static async Task<bool> IsVisibleAsync(CustomerFollowUp entry, IReadOnlyList<string> hidden, IDbContextFactory<CrmDbContext> contexts,
        CancellationToken cancellationToken) =>
        hidden.Count == 0 || (await VisibleAsync([entry], hidden, contexts, cancellationToken)).Count == 1;

    /// <summary>Whether a due list filtered by <paramref name="team"/> names a team hidden from the person.</summary>
    public static bool IsHiddenTeam(string? team, IReadOnlyList<string> hidden) =>
        team is not null && hidden.Contains(team, StringComparer.OrdinalIgnoreCase);

    private static bool Visible(CustomerFollowUp entry, IReadOnlyList<string> hidden, Dictionary<long, string?> ticketTeams) =>
        !IsHiddenTeam(entry.Team, hidden)
        && !(entry.Ticket is { } ticket && ticketTeams.GetValueOrDefault(ticket) is { } ticketTeam && hidden.Contains(ticketTeam, StringComparer.Ordinal));

    private static async Task<Dictionary<long, string?>> TicketTeamsAsync(List<long> numbers, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        if (numbers.Count == 0)
            return [];
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number)).ToDictionaryAsync(t => t.Number, t => t.Team, cancellationToken);
    }
}
