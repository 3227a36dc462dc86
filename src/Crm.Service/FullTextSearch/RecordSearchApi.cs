using System.Security.Claims;
using Crm.Service.AgentConsole;
using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Search;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.FullTextSearch;

public static class RecordSearchExtensions
{
    /// <summary>The records index's indexer on the change feed, its rebuilds, and the search the API and console use.</summary>
    public static IHostApplicationBuilder AddRecordSearch(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSingleton<RecordIndexer>();
        services.AddSingleton<Crm.Service.Grains.Storage.IChangeConsumer>(provider => provider.GetRequiredService<RecordIndexer>());
        services.AddSingleton<RecordReindexService>();
        Crm.Connectors.Abstractions.ConnectorLeaseExtensions.AddConnectorLeases(services);
        services.AddHostedService(provider => provider.GetRequiredService<RecordReindexService>());
        services.AddSingleton<RecordSearch>();
        services.AddScoped<RecordAudiences>();
        return builder;
    }

    /// <summary>GET /api/v1/search (agent and admin keys) and the records index's reindex under /api/v1/admin/search.</summary>
    public static IEndpointRouteBuilder MapRecordSearchApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/v1/search", SearchAsync).RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        var admin = endpoints.MapGroup("/api/v1/admin/search").RequireAuthorization(ApiKeyAuthenticationExtensions.AdminPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        admin.MapPost("/reindex", (RecordReindexService reindex) =>
        {
            var started = reindex.TryStart(out _);
            return Results.Accepted("/api/v1/admin/search/reindex", new { started, progress = reindex.Progress });
        });
        admin.MapGet("/reindex", (RecordReindexService reindex) => TypedResults.Ok(new { progress = reindex.Progress }));
        return endpoints;
    }

    /// <summary>Tickets, messages and customers matching <paramref name="q"/> that the key's holder may see.
    /// <paramref name="kind"/>: "ticket", "message", "customer" (comma-separated; default all).</summary>
    internal static async Task<IResult> SearchAsync(string? q, string? kind, int? skip, int? take, HttpContext http, RecordSearch search, RecordAudiences audiences,
        CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(q) || q.Length > RecordSearch.MaxTextLength)
            return Problems.Invalid("q", $"q is required (at most {RecordSearch.MaxTextLength} characters).");
        var kinds = (kind ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (kinds.FirstOrDefault(k => !SearchKinds.Records.Contains(k)) is { } unknown)
            return Problems.Invalid("kind", $"kind must be ticket, message or customer (comma-separated), not '{unknown}'.");
        if (skip is < 0 or > SearchQuery.MaxSkip)
            return Problems.Invalid("skip", $"skip must be between 0 and {SearchQuery.MaxSkip}.");
        if (take is < 1 or > RecordSearch.MaxTake)
            return Problems.Invalid("take", $"take must be between 1 and {RecordSearch.MaxTake}.");
        try
        {
            var results = await search.SearchAsync(await audiences.ForApiKeyAsync(http.User, ct), q, kinds, skip ?? 0, take ?? 20, ct);
            return TypedResults.Ok(new { total = results.Total, hits = results.Hits });
        }
        catch (SearchUnavailableException e)
        {
            return TypedResults.Problem(e.Message, statusCode: StatusCodes.Status503ServiceUnavailable, title: "Search unavailable");
        }
    }
}

/// <summary>Who a search is for, from a console sign-in or an API key (<see cref="RecordAudience"/>).</summary>
public sealed class RecordAudiences(TicketAccess access, TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts, UserManager<IdentityUser> users)
{
    /// <summary>A console user: tickets, messages and customers for Agents and Supervisors (an Admin or KnowledgeEditor
    /// without one of those roles sees none, as on every ticket page), without restricted teams they are not in.</summary>
    public async Task<RecordAudience> ForConsoleAsync(ClaimsPrincipal user, CancellationToken cancellationToken) =>
        user.IsInRole(ConsoleRoles.Agent) || user.IsInRole(ConsoleRoles.Supervisor)
            ? new RecordAudience(true, await access.HiddenTeamsAsync(user, cancellationToken))
            : RecordAudience.Nobody;

    /// <summary>An API key: an admin key sees everything; a personal agent key what its owner sees in the console;
    /// any other agent key (a service's) no restricted team at all.</summary>
    public async Task<RecordAudience> ForApiKeyAsync(ClaimsPrincipal key, CancellationToken cancellationToken)
    {
        if (key.IsInRole(Roles.Admin))
            return new RecordAudience(true, []);
        if (!key.IsInRole(Roles.Agent))
            return RecordAudience.Nobody;
        var keyId = Guid.TryParse(key.FindFirstValue(ClaimTypes.NameIdentifier), out var id) ? id : Guid.Empty;
        string? ownerId;
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
            ownerId = await db.ApiKeys.AsNoTracking().Where(k => k.Id == keyId).Select(k => k.OwnerId).FirstOrDefaultAsync(cancellationToken);
        if (ownerId is not null && await users.FindByIdAsync(ownerId) is { } owner)
        {
            var roles = await users.GetRolesAsync(owner);
            if (roles.Contains(ConsoleRoles.Supervisor) || roles.Contains(ConsoleRoles.Admin))
                return new RecordAudience(true, []);
            if (!roles.Contains(ConsoleRoles.Agent))
                return RecordAudience.Nobody;
            return new RecordAudience(true, await teams.RestrictedTeamsWithoutAsync(ownerId, cancellationToken));
        }
        return new RecordAudience(true, [.. (await teams.ListAsync(cancellationToken)).Where(t => t.Restricted).Select(t => t.Id)]);
    }
}
