using System.Security.Claims;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Grains.Sla;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Crm.Service.Api;

/// <summary>POST body of a follow-up log entry.</summary>
public sealed record CustomerFollowUpRequest(
    FollowUpChannel? How, DateTimeOffset? At, string? Outcome, DateTimeOffset? NextDueAt, string? Owner, string? Team, long? Ticket);

/// <summary>The customer follow-up log: <c>/api/v1/customers/{id}/follow-ups</c> and the due lists
/// <c>/api/v1/follow-ups/due?owner=&amp;team=</c>. Entries are documents in the routing store; the due list reads them
/// all (fine for thousands of entries; a table with an index is the next step).</summary>
internal static class CustomerFollowUpApi
{
    public const int MaxOutcomeLength = 4000;

    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/customers/{id:guid}/follow-ups", async (Guid id, IRoutingStore documents, CancellationToken ct) =>
            TypedResults.Ok((await AllAsync(documents, ct)).Where(f => f.CustomerId == id).OrderByDescending(f => f.At).ToList()));
        api.MapPost("/customers/{id:guid}/follow-ups", RecordAsync);
        api.MapPost("/follow-ups/{id:guid}/done", async (Guid id, IGrainFactory grains, CancellationToken ct) =>
            await grains.GetGrain<ICustomerFollowUpGrain>(id).CompleteAsync(ct) is { } done
                ? Results.Ok(done)
                : Problems.Of(ProblemKind.NotFound, $"No follow-up {id}.", "id"));
        api.MapGet("/follow-ups/due", async (string? owner, string? team, DateTimeOffset? until, IRoutingStore documents, TimeProvider time, CancellationToken ct) =>
        {
            var by = until ?? time.GetUtcNow();
            return TypedResults.Ok((await AllAsync(documents, ct))
                .Where(f => f is { DoneAt: null, NextDueAt: { } due } && due <= by)
                .Where(f => owner is null || string.Equals(f.Owner ?? f.By, owner, StringComparison.OrdinalIgnoreCase))
                .Where(f => team is null || string.Equals(f.Team, team, StringComparison.OrdinalIgnoreCase))
                .OrderBy(f => f.NextDueAt).ToList());
        });
    }

    internal static async Task<IReadOnlyList<CustomerFollowUp>> AllAsync(IRoutingStore documents, CancellationToken cancellationToken) =>
        [.. (await documents.ListAsync(CustomerFollowUpGrain.Kind, cancellationToken)).Select(RoutingJson.Read<CustomerFollowUp>)];

    internal static async Task<IResult> RecordAsync(Guid id, CustomerFollowUpRequest request, ClaimsPrincipal user, IGrainFactory grains,
        IRoutingStore documents, TimeProvider time, CancellationToken cancellationToken)
    {
        if (request.How is not { } how)
            return Problems.Invalid("how", "how is required: phone, email, visit, chat or other.");
        if (request.Outcome is { Length: > MaxOutcomeLength })
            return Problems.Invalid("outcome", $"The outcome is at most {MaxOutcomeLength} characters.");
        var now = time.GetUtcNow();
        if (request.NextDueAt is { } next && next > now + TicketFollowUpGrain.MaxAhead)
            return Problems.Invalid("nextDueAt", $"The next follow-up is at most {TicketFollowUpGrain.MaxAhead.Days} days ahead.");
        if (request.At is { } at && at > now + TimeSpan.FromMinutes(5))
            return Problems.Invalid("at", "at is when the contact happened; it cannot be in the future.");
        foreach (var (field, value) in new[] { ("owner", request.Owner), ("team", request.Team) })
            if (value is { Length: > 200 })
                return Problems.Invalid(field, $"{field} is at most 200 characters.");
        if (await grains.GetGrain<ICustomerGrain>(id).GetAsync() is null)
            return Problems.Of(ProblemKind.NotFound, $"No customer {id}.", "id");
        if (request.Ticket is { } number && await grains.GetGrain<ITicketGrain>(number).GetAsync() is not { } ticket)
            return Problems.Of(ProblemKind.NotFound, $"No ticket #{number}.", "ticket");
        else if (request.Ticket is not null && (await grains.GetGrain<ITicketGrain>(request.Ticket.Value).GetAsync())!.CustomerId != id)
            return Problems.Invalid("ticket", $"Ticket #{request.Ticket} belongs to another customer.");
        // This contact is the follow-up the earlier entries asked for: their reminders stop.
        var open = (await AllAsync(documents, cancellationToken)).Where(f => f.CustomerId == id && f.DoneAt is null && f.NextDueAt is not null).ToList();
        var actor = FollowUpApi.Actor(user);
        var entry = await grains.GetGrain<ICustomerFollowUpGrain>(Guid.NewGuid()).RecordAsync(new CustomerFollowUp
        {
            Id = Guid.Empty,
            CustomerId = id,
            Ticket = request.Ticket,
            By = actor,
            At = request.At ?? now,
            How = how,
            Outcome = string.IsNullOrWhiteSpace(request.Outcome) ? null : request.Outcome.Trim(),
            NextDueAt = request.NextDueAt?.ToUniversalTime(),
            Owner = string.IsNullOrWhiteSpace(request.Owner) ? actor : request.Owner.Trim(),
            Team = string.IsNullOrWhiteSpace(request.Team) ? null : request.Team.Trim(),
        }, cancellationToken);
        foreach (var earlier in open)
            await grains.GetGrain<ICustomerFollowUpGrain>(earlier.Id).CompleteAsync(cancellationToken);
        return TypedResults.Created($"/api/v1/customers/{id}/follow-ups", entry);
    }
}
