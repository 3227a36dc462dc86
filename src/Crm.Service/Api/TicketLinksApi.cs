using System.Security.Claims;
using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Infrastructure.TicketLinks;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Api;

/// <summary>A link to another ticket: <c>relation</c> "related" (default) or "duplicate" (this ticket duplicates <c>ticket</c>).</summary>
public sealed record TicketLinkRequest(long? Ticket, string? Relation);

/// <summary><c>GET/POST/DELETE /api/v1/tickets/{id}/links</c>: linked tickets. Both tickets must be visible to the key's
/// person (a restricted team's ticket answers 404, as if it did not exist); linking twice changes nothing.</summary>
public static class TicketLinksApi
{
    public static IEndpointRouteBuilder MapTicketLinksApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1/tickets").RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        api.MapGet("/{number:long}/links", ListAsync);
        api.MapPost("/{number:long}/links", LinkAsync);
        api.MapDelete("/{number:long}/links/{other:long}", UnlinkAsync);
        return endpoints;
    }

    private static async Task<IReadOnlyList<string>?> VisibleAsync(ClaimsPrincipal user, IDbContextFactory<CrmDbContext> contexts, TeamDirectory teams,
        TicketQueries tickets, IEnumerable<long> numbers, CancellationToken cancellationToken)
    {
        var hidden = await RepliesApi.HiddenTeamsAsync(await RepliesApi.OwnerAsync(user, contexts, cancellationToken), teams, contexts, cancellationToken);
        foreach (var number in numbers)
        {
            if (await tickets.GetAsync(number, cancellationToken) is not { } ticket || (ticket.Team is { } team && hidden.Contains(team, StringComparer.Ordinal)))
                return null;
        }
        return hidden;
    }

    internal static async Task<Results<Ok<IReadOnlyList<TicketLinkView>>, ProblemHttpResult>> ListAsync(long number, ClaimsPrincipal user,
        IDbContextFactory<CrmDbContext> contexts, TeamDirectory teams, TicketQueries tickets, TicketLinkStore links, CancellationToken cancellationToken) =>
        await VisibleAsync(user, contexts, teams, tickets, [number], cancellationToken) is { } hidden
            ? TypedResults.Ok(await links.ListAsync(number, hidden, cancellationToken))
            : Problems.Of(ProblemKind.NotFound, $"No ticket #{number}.", "number");

    internal static async Task<Results<Created<IReadOnlyList<TicketLinkView>>, Ok<IReadOnlyList<TicketLinkView>>, ProblemHttpResult>> LinkAsync(
        long number, TicketLinkRequest request, ClaimsPrincipal user, IDbContextFactory<CrmDbContext> contexts, TeamDirectory teams,
        TicketQueries tickets, TicketLinkStore links, CancellationToken cancellationToken)
    {
        var relation = request.Relation ?? TicketLinkRelations.Related;
        if (!TicketLinkRelations.IsValid(relation))
            return Problems.Invalid("relation", "relation is \"related\" or \"duplicate\" (this ticket is a duplicate of the other).");
        if (request.Ticket is not { } other || other == number)
            return Problems.Invalid("ticket", "ticket is required: the number of another ticket.");
        if (await VisibleAsync(user, contexts, teams, tickets, [number], cancellationToken) is null)
            return Problems.Of(ProblemKind.NotFound, $"No ticket #{number}.", "number");
        if (await VisibleAsync(user, contexts, teams, tickets, [other], cancellationToken) is not { } hidden)
            return Problems.Of(ProblemKind.NotFound, $"No ticket #{other}.", "ticket");
        var outcome = await links.LinkAsync(number, other, relation, user.Actor(), cancellationToken);
        if (outcome == LinkOutcome.Conflict)
            return Problems.Of(ProblemKind.Conflict, $"#{number} and #{other} are already linked with another relation; unlink them first.", "relation");
        var list = await links.ListAsync(number, hidden, cancellationToken);
        return outcome == LinkOutcome.Created ? TypedResults.Created($"/api/v1/tickets/{number}/links", list) : TypedResults.Ok(list);
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> UnlinkAsync(long number, long other, ClaimsPrincipal user,
        IDbContextFactory<CrmDbContext> contexts, TeamDirectory teams, TicketQueries tickets, TicketLinkStore links, CancellationToken cancellationToken)
    {
        if (await VisibleAsync(user, contexts, teams, tickets, [number, other], cancellationToken) is null)
            return Problems.Of(ProblemKind.NotFound, $"No ticket #{number} linked to #{other}.", "ticket");
        // Deleting a link that is not there is the outcome the caller wants: 204 either way (idempotent).
        await links.UnlinkAsync(number, other, user.Actor(), cancellationToken);
        return TypedResults.NoContent();
    }
}
