using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Api;

/// <summary>Admin API: API keys and channel accounts.</summary>
public static class AdminApi
{
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var admin = endpoints.MapGroup("/api/v1/admin").RequireAuthorization(ApiKeyAuthenticationExtensions.AdminPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        admin.MapPost("/api-keys", CreateApiKeyAsync);
        admin.MapGet("/api-keys", ListApiKeysAsync);
        admin.MapDelete("/api-keys/{id:guid}", RevokeApiKeyAsync);
        admin.MapPut("/channels/{id}", ConfigureChannelAsync);
        admin.MapGet("/channels/{id}", GetChannelAsync);
        return endpoints;
    }

    internal static async Task<Results<Created<CreatedApiKey>, ProblemHttpResult>> CreateApiKeyAsync(
        CreateApiKeyRequest request, ApiKeyDirectory keys, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 100)
            return Problems.Invalid("name", "name is required (at most 100 characters).");
        if (request.Role is null || !Roles.IsValid(request.Role))
            return Problems.Invalid("role", $"role must be '{Roles.Agent}' or '{Roles.Admin}'.");
        var (record, key) = await keys.CreateAsync(request.Name.Trim(), request.Role, cancellationToken: cancellationToken);
        // The key is shown once; only its hash is stored.
        return TypedResults.Created($"/api/v1/admin/api-keys/{record.Id}", new CreatedApiKey(record.Id, record.Name, record.Role, key));
    }

    internal static async Task<Ok<List<object>>> ListApiKeysAsync(IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var keys = await db.ApiKeys.AsNoTracking().OrderBy(k => k.CreatedAt)
            .Select(k => (object)new { k.Id, k.Name, k.Role, k.CreatedAt, k.RevokedAt }).ToListAsync(cancellationToken);
        return TypedResults.Ok(keys);
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RevokeApiKeyAsync(Guid id, ApiKeyDirectory keys, CancellationToken cancellationToken) =>
        await keys.RevokeAsync(id, cancellationToken) ? TypedResults.NoContent() : Problems.Of(ProblemKind.NotFound, $"No active API key {id}.", "id");

    internal static async Task<Results<Ok<ChannelAccountSnapshot>, ProblemHttpResult>> ConfigureChannelAsync(
        string id, ChannelRequest request, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (!GrainKeys.IsValidChannelAccountId(id))
            return Problems.Invalid("id", "A channel id is 1-64 lower-case letters, digits or '-'.");
        if (request.Kind is not { } kind)
            return Problems.Invalid("kind", "kind is required: api, email, telegram or webChat.");
        if (request.Secret is { Length: < 16 })
            return Problems.Invalid("secret", "A channel secret needs at least 16 characters (or leave it out to have one generated).");
        return TypedResults.Ok(await grains.GetGrain<IChannelAccountGrain>(id).ConfigureAsync(new ChannelAccountSettings
        {
            Kind = kind,
            Name = request.Name ?? id,
            Enabled = request.Enabled ?? true,
            WebhookUrl = request.WebhookUrl,
            Secret = request.Secret,
        }, cancellationToken));
    }

    internal static async Task<Results<Ok<ChannelAccountSnapshot>, ProblemHttpResult>> GetChannelAsync(string id, IGrainFactory grains) =>
        GrainKeys.IsValidChannelAccountId(id) && await grains.GetGrain<IChannelAccountGrain>(id).GetAsync() is { } channel
            ? TypedResults.Ok(channel)
            : Problems.Of(ProblemKind.NotFound, $"No channel '{id}'.", "id");
}
