using System.Security.Claims;
using Crm.Connectors.Abstractions;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Replies;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Api;

public sealed record CannedResponseResource(Guid Id, string Shortcut, string Title, string Text, bool Shared, DateTimeOffset UpdatedAt, string UpdatedBy);
public sealed record CannedResponseRequest(string? Shortcut, string? Title, string? Text, bool? Shared);
public sealed record RenderedCannedResponse(Guid Id, long Ticket, string Text);
public sealed record MacroResource(Guid Id, string Name, IReadOnlyList<MacroAction> Actions, bool Shared, DateTimeOffset UpdatedAt, string UpdatedBy);
public sealed record MacroRequest(string? Name, IReadOnlyList<MacroAction>? Actions, bool? Shared);
public sealed record ApplyMacroRequest(IReadOnlyList<long>? Tickets);
/// <summary><see cref="ReplySent"/> with <see cref="Applied"/> false: the reply went out, a later step was refused.</summary>
public sealed record MacroOutcome(long Ticket, bool Applied, string? Error, bool ReplySent);

/// <summary>
/// Canned responses and macros over the API (<c>/api/v1/canned-responses</c>, <c>/api/v1/macros</c>). A key's
/// personal ones are its owner's (the console person who made the key), shared ones are changed only with an admin
/// key; the console's Replies page is the same library.
/// </summary>
public static class RepliesApi
{
    public const int MaxBulk = 100;

    public static IEndpointRouteBuilder MapRepliesApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1").RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        api.MapGet("/canned-responses", ListCannedAsync);
        api.MapPost("/canned-responses", CreateCannedAsync);
        api.MapPut("/canned-responses/{id:guid}", UpdateCannedAsync);
        api.MapDelete("/canned-responses/{id:guid}", DeleteCannedAsync);
        api.MapGet("/tickets/{number:long}/canned-responses/{id:guid}", RenderCannedAsync);
        api.MapGet("/macros", ListMacrosAsync);
        api.MapPost("/macros", CreateMacroAsync);
        api.MapPut("/macros/{id:guid}", UpdateMacroAsync);
        api.MapDelete("/macros/{id:guid}", DeleteMacroAsync);
        api.MapPost("/macros/{id:guid}/apply", ApplyMacroAsync);
        return endpoints;
    }

    /// <summary>The library owner of the calling key: its console person, or the key itself for a system key.</summary>
    internal static async Task<string> OwnerAsync(ClaimsPrincipal user, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        var keyId = Guid.Parse(user.KeyId());
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var owner = await db.ApiKeys.AsNoTracking().Where(k => k.Id == keyId).Select(k => k.OwnerId).FirstOrDefaultAsync(cancellationToken);
        return owner ?? "key:" + keyId.ToString("N");
    }

    private static bool MayChangeShared(ClaimsPrincipal user) => user.IsInRole(Roles.Admin);

    /// <summary>
    /// Restricted teams whose tickets a key may not touch here: a personal key carries its person's limits (as in the
    /// console: Supervisors and Admins see every team, an Agent only the restricted teams they are in); a system key
    /// (no person) keeps the API's reach (review console2 F6).
    /// </summary>
    internal static async Task<IReadOnlyList<string>> HiddenTeamsAsync(string owner, Infrastructure.Teams.TeamDirectory teams,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        if (owner.StartsWith("key:", StringComparison.Ordinal))
            return [];
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var seesEveryTeam = await (from link in db.UserRoles
                                   join role in db.Roles on link.RoleId equals role.Id
                                   where link.UserId == owner && (role.Name == ConsoleRoles.Supervisor || role.Name == ConsoleRoles.Admin)
                                   select link).AnyAsync(cancellationToken);
        return seesEveryTeam ? [] : await teams.RestrictedTeamsWithoutAsync(owner, cancellationToken);
    }

    private static CannedResponseResource Resource(CannedResponseRecord c) =>
        new(c.Id, c.Shortcut, c.Title, c.Text, c.OwnerId == ReplyLibrary.Shared, c.UpdatedAt, c.UpdatedBy);

    private static MacroResource Resource(MacroRecord m) =>
        new(m.Id, m.Name, m.Actions, m.OwnerId == ReplyLibrary.Shared, m.UpdatedAt, m.UpdatedBy);

    internal static async Task<Ok<List<CannedResponseResource>>> ListCannedAsync(string? q, ClaimsPrincipal user, ReplyLibrary library,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken) =>
        TypedResults.Ok((await library.CannedAsync(await OwnerAsync(user, contexts, cancellationToken), q, cancellationToken)).Select(Resource).ToList());

    internal static Task<Results<Created<CannedResponseResource>, Ok<CannedResponseResource>, ProblemHttpResult>> CreateCannedAsync(
        CannedResponseRequest request, ClaimsPrincipal user, ReplyLibrary library, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken) =>
        SaveCannedAsync(null, request, user, library, contexts, cancellationToken);

    internal static Task<Results<Created<CannedResponseResource>, Ok<CannedResponseResource>, ProblemHttpResult>> UpdateCannedAsync(
        Guid id, CannedResponseRequest request, ClaimsPrincipal user, ReplyLibrary library, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken) =>
        SaveCannedAsync(id, request, user, library, contexts, cancellationToken);

    private static async Task<Results<Created<CannedResponseResource>, Ok<CannedResponseResource>, ProblemHttpResult>> SaveCannedAsync(
        Guid? id, CannedResponseRequest request, ClaimsPrincipal user, ReplyLibrary library, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        var shared = request.Shared ?? false;
        if (shared && !MayChangeShared(user))
            return Problems.Of(ProblemKind.Forbidden, "Only an admin key changes shared canned responses; save it as your own (shared: false).", "shared");
        var owner = shared ? ReplyLibrary.Shared : await OwnerAsync(user, contexts, cancellationToken);
        var (saved, error) = await library.SaveCannedAsync(id, owner, request.Shortcut, request.Title, request.Text, user.Actor(), cancellationToken);
        if (error is { } e)
            return e.Field == "id" ? Problems.Of(ProblemKind.NotFound, e.Message, "id") : Problems.Invalid(e.Field, e.Message);
        return id is null ? TypedResults.Created($"/api/v1/canned-responses/{saved!.Id}", Resource(saved)) : TypedResults.Ok(Resource(saved!));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteCannedAsync(Guid id, ClaimsPrincipal user, ReplyLibrary library,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        var owner = await OwnerAsync(user, contexts, cancellationToken);
        if (await library.DeleteCannedAsync(id, owner, cancellationToken)
            || (MayChangeShared(user) && await library.DeleteCannedAsync(id, ReplyLibrary.Shared, cancellationToken)))
            return TypedResults.NoContent();
        return Problems.Of(ProblemKind.NotFound, "No such canned response of yours (shared ones need an admin key).", "id");
    }

    /// <summary>The text with this ticket's placeholders filled, ready to send.</summary>
    internal static async Task<Results<Ok<RenderedCannedResponse>, ProblemHttpResult>> RenderCannedAsync(long number, Guid id, ClaimsPrincipal user,
        ReplyLibrary library, Infrastructure.Queries.TicketQueries tickets, Infrastructure.Teams.TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts,
        CancellationToken cancellationToken)
    {
        var owner = await OwnerAsync(user, contexts, cancellationToken);
        if (await library.FindCannedAsync(id, cancellationToken) is not { } canned || (canned.OwnerId != ReplyLibrary.Shared && canned.OwnerId != owner))
            return Problems.Of(ProblemKind.NotFound, "No such canned response.", "id");
        if (await tickets.GetAsync(number, cancellationToken) is not { } ticket
            || (ticket.Team is { } team && (await HiddenTeamsAsync(owner, teams, contexts, cancellationToken)).Contains(team, StringComparer.Ordinal)))
            return Problems.Of(ProblemKind.NotFound, $"No ticket #{number}.", "number");
        var name = user.Identity?.Name ?? "";
        var values = new PlaceholderValues(ticket.CustomerName, ticket.Number, ticket.Subject, AgentNames.Display(name), AgentNames.Email(name));
        return TypedResults.Ok(new RenderedCannedResponse(canned.Id, number, Placeholders.Render(canned.Text, values)));
    }

    internal static async Task<Ok<List<MacroResource>>> ListMacrosAsync(ClaimsPrincipal user, ReplyLibrary library,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken) =>
        TypedResults.Ok((await library.MacrosAsync(await OwnerAsync(user, contexts, cancellationToken), cancellationToken)).Select(Resource).ToList());

    internal static Task<Results<Created<MacroResource>, Ok<MacroResource>, ProblemHttpResult>> CreateMacroAsync(
        MacroRequest request, ClaimsPrincipal user, ReplyLibrary library, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken) =>
        SaveMacroAsync(null, request, user, library, contexts, cancellationToken);

    internal static Task<Results<Created<MacroResource>, Ok<MacroResource>, ProblemHttpResult>> UpdateMacroAsync(
        Guid id, MacroRequest request, ClaimsPrincipal user, ReplyLibrary library, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken) =>
        SaveMacroAsync(id, request, user, library, contexts, cancellationToken);

    private static async Task<Results<Created<MacroResource>, Ok<MacroResource>, ProblemHttpResult>> SaveMacroAsync(
        Guid? id, MacroRequest request, ClaimsPrincipal user, ReplyLibrary library, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        var shared = request.Shared ?? false;
        if (shared && !MayChangeShared(user))
            return Problems.Of(ProblemKind.Forbidden, "Only an admin key changes shared macros; save it as your own (shared: false).", "shared");
        var owner = shared ? ReplyLibrary.Shared : await OwnerAsync(user, contexts, cancellationToken);
        var (saved, error) = await library.SaveMacroAsync(id, owner, request.Name, request.Actions, user.Actor(), cancellationToken);
        if (error is { } e)
            return e.Field == "id" ? Problems.Of(ProblemKind.NotFound, e.Message, "id") : Problems.Invalid(e.Field, e.Message);
        return id is null ? TypedResults.Created($"/api/v1/macros/{saved!.Id}", Resource(saved)) : TypedResults.Ok(Resource(saved!));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteMacroAsync(Guid id, ClaimsPrincipal user, ReplyLibrary library,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        var owner = await OwnerAsync(user, contexts, cancellationToken);
        if (await library.DeleteMacroAsync(id, owner, cancellationToken)
            || (MayChangeShared(user) && await library.DeleteMacroAsync(id, ReplyLibrary.Shared, cancellationToken)))
            return TypedResults.NoContent();
        return Problems.Of(ProblemKind.NotFound, "No such macro of yours (shared ones need an admin key).", "id");
    }

    /// <summary>Applies a macro to up to <see cref="MaxBulk"/> tickets; one outcome per ticket. A retried apply (same
    /// Idempotency-Key, same macro version) does only the steps still missing (MacroRunner); without a key, or with a
    /// new one, the macro is applied again.</summary>
    internal static async Task<Results<Ok<List<MacroOutcome>>, ProblemHttpResult>> ApplyMacroAsync(Guid id, ApplyMacroRequest request, HttpContext http,
        ClaimsPrincipal user, ReplyLibrary library, MacroRunner runner, Infrastructure.Teams.TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts,
        CancellationToken cancellationToken)
    {
        if (!AgentApi.TryReadIdempotencyKey(http, user, out var requestId))
            return Problems.Invalid("Idempotency-Key", $"Idempotency-Key must be one value of 1-{AgentApi.MaxIdempotencyKeyLength} visible ASCII characters.");
        var owner = await OwnerAsync(user, contexts, cancellationToken);
        if (await library.FindMacroAsync(id, cancellationToken) is not { } macro || (macro.OwnerId != ReplyLibrary.Shared && macro.OwnerId != owner))
            return Problems.Of(ProblemKind.NotFound, "No such macro.", "id");
        // Without a key every call is a new apply; with one, a retry does only what is still missing.
        var applyId = requestId ?? "once:" + Guid.NewGuid().ToString("N");
        var numbers = request.Tickets?.Distinct().ToList() ?? [];
        if (numbers.Count is 0 or > MaxBulk)
            return Problems.Invalid("tickets", $"tickets: 1 to {MaxBulk} ticket numbers.");
        var name = user.Identity?.Name ?? "";
        var caller = new MacroCaller(user.Actor(), AgentNames.Display(name), AgentNames.Email(name));
        var hidden = await HiddenTeamsAsync(owner, teams, contexts, cancellationToken);
        var outcomes = new List<MacroOutcome>();
        foreach (var number in numbers)
        {
            if (hidden.Count > 0 && await TeamOfAsync(number) is { } team && hidden.Contains(team, StringComparer.Ordinal))
            {
                // Answered like a ticket that does not exist: the key's person may not know it is there.
                outcomes.Add(new MacroOutcome(number, false, "no such ticket", false));
                continue;
            }
            var result = await runner.ApplyAsync(macro, number, caller, applyId, cancellationToken);
            outcomes.Add(new MacroOutcome(number, result.Applied, result.Error, result.ReplySent));
        }
        return TypedResults.Ok(outcomes);

        async Task<string?> TeamOfAsync(long number)
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            return await db.Tickets.AsNoTracking().Where(t => t.Number == number).Select(t => t.Team).FirstOrDefaultAsync(cancellationToken);
        }
    }
}

/// <summary>What {{agent.name}} and {{agent.email}} say for a person: the console's sign-in email, or a personal
/// key's "{email}/{label}" name; the display name is the email's local part, capitalized ("ann.lee" → "Ann Lee").</summary>
public static class AgentNames
{
    public static string Email(string name) => name.Split('/')[0];

    public static string Display(string name)
    {
        var local = Email(name).Split('@')[0];
        var words = local.Split(['.', '_', '-'], StringSplitOptions.RemoveEmptyEntries);
        return words.Length == 0 ? local : string.Join(' ', words.Select(w => char.ToUpperInvariant(w[0]) + w[1..]));
    }
}
