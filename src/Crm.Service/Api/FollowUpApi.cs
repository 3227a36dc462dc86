using System.Security.Claims;
using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Crm.Service.Api;

/// <summary>PUT body of a ticket's follow-up: when (an ISO 8601 instant with offset) and an optional note.</summary>
public sealed record TicketFollowUpRequest(DateTimeOffset? At, string? Note);

/// <summary>Agent API for follow-up reminders: <c>/api/v1/tickets/{number}/follow-up</c>.</summary>
public static class FollowUpApi
{
    public static IEndpointRouteBuilder MapFollowUpApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1").RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        api.MapGet("/tickets/{number:long}/follow-up", GetTicketFollowUpAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapPut("/tickets/{number:long}/follow-up", SetTicketFollowUpAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapDelete("/tickets/{number:long}/follow-up", async (long number, IGrainFactory grains, CancellationToken ct) =>
            await grains.GetGrain<ITicketFollowUpGrain>(number).ClearAsync(ct)
                ? Results.NoContent()
                : Problems.Of(ProblemKind.NotFound, $"Ticket #{number} has no follow-up waiting.", "number")).AddEndpointFilter<TicketReachFilter>();
        CustomerFollowUpApi.Map(api);
        return endpoints;
    }

    internal static async Task<Results<Ok<TicketFollowUp>, ProblemHttpResult>> GetTicketFollowUpAsync(long number, IGrainFactory grains) =>
        await grains.GetGrain<ITicketFollowUpGrain>(number).GetAsync() is { } followUp
            ? TypedResults.Ok(followUp)
            : Problems.Of(ProblemKind.NotFound, $"Ticket #{number} has no follow-up.", "number");

    internal static async Task<Results<Ok<TicketFollowUp>, ProblemHttpResult>> SetTicketFollowUpAsync(
        long number, TicketFollowUpRequest request, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (request.At is not { } at)
            return Problems.Invalid("at", "at is required: when to follow up, e.g. \"2026-12-01T09:00:00+01:00\".");
        return TypedResults.Ok(await grains.GetGrain<ITicketFollowUpGrain>(number).SetAsync(at, Actor(user), request.Note, cancellationToken));
    }

    internal static string Actor(ClaimsPrincipal user) =>
        user.Identity?.AuthenticationType == ApiKeyAuthenticationHandler.SchemeName ? user.Actor() : user.ConsoleActor();
}
