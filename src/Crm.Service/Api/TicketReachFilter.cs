using System.Globalization;
using Crm.Connectors.Abstractions;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Api;

/// <summary>
/// The per-ticket routes of the agent API (<c>/tickets/{number}/…</c>) answer a personal key as its person's console
/// would: a ticket of a restricted team the person is not in is "no such ticket", for reads and writes alike (replies,
/// notes, changes). A system key (no person) keeps the API's reach. The same limits as canned responses and macros
/// (<see cref="RepliesApi.HiddenTeamsAsync"/>).
/// </summary>
internal sealed class TicketReachFilter(TicketQueries tickets, Infrastructure.Teams.TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts)
    : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var numbers = new List<(long Number, string Field)>();
        if (http.Request.RouteValues.TryGetValue("number", out var raw)
            && long.TryParse(Convert.ToString(raw, CultureInfo.InvariantCulture), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            numbers.Add((number, "number"));
        // A merge names a second ticket: merging into a hidden ticket would answer with it (review LD2).
        if (context.Arguments.OfType<MergeTicketRequest>().FirstOrDefault() is { Into: { } into })
            numbers.Add((into, "into"));
        if (numbers.Count > 0)
        {
            var cancellationToken = http.RequestAborted;
            var owner = await RepliesApi.OwnerAsync(http.User, contexts, cancellationToken);
            var hidden = await RepliesApi.HiddenTeamsAsync(owner, teams, contexts, cancellationToken);
            if (hidden.Count > 0)
                foreach (var (ticket, field) in numbers)
                    if (await tickets.GetAsync(ticket, cancellationToken) is { Team: { } team } && hidden.Contains(team, StringComparer.Ordinal))
                        return Problems.Of(ProblemKind.NotFound, $"No ticket #{ticket}.", field);
        }
        return await next(context);
    }
}
