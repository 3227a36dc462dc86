using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using System.Text.Json;
using System.Text.Json.Serialization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.Channels;
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
        admin.MapPost("/channels/{id}/rotate-secret", RotateChannelSecretAsync);
        admin.MapGet("/change-feed", GetChangeFeedAsync);
        return endpoints;
    }

    /// <summary>The change feed's head and each consumer on this node: cursor, lag, failures and the last error.</summary>
    internal static async Task<Ok<ChangeFeedView>> GetChangeFeedAsync(IChangeFeed feed, ChangeFeedStatus status, CancellationToken cancellationToken)
    {
        var head = await feed.LastSequenceAsync(cancellationToken);
        return TypedResults.Ok(new ChangeFeedView(head,
            [.. status.Consumers.Select(c => new ChangeConsumerView(c.Name, c.Cursor, c.Cursor is { } cursor ? head - cursor : null, c.LastHandledAt, c.Failures, c.FailingSince, c.LastError))],
            status.PruneHeldBackBy));
    }

    internal static async Task<Results<Created<CreatedApiKey>, ProblemHttpResult>> CreateApiKeyAsync(
        CreateApiKeyRequest request, ApiKeyDirectory keys, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 100)
            return Problems.Invalid("name", "name is required (at most 100 characters).");
        if (request.Role is null || !Roles.IsValid(request.Role))
            return Problems.Invalid("role", $"role must be '{Roles.Agent}', '{Roles.KnowledgeEditor}' or '{Roles.Admin}'.");
        var (record, key) = await keys.CreateAsync(request.Name.Trim(), request.Role, cancellationToken: cancellationToken);
        // The key is shown once; only its hash is stored.
        return TypedResults.Created($"/api/v1/admin/api-keys/{record.Id}", new CreatedApiKey(record.Id, record.Name, record.Role, key));
    }

    internal static async Task<Ok<List<object>>> ListApiKeysAsync(IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var keys = await db.ApiKeys.AsNoTracking().OrderBy(k => k.CreatedAt)
            .Select(k => (object)new { k.Id, k.Name, k.Role, k.CreatedAt, k.RevokedAt, k.OwnerId }).ToListAsync(cancellationToken);
        return TypedResults.Ok(keys);
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RevokeApiKeyAsync(Guid id, ApiKeyDirectory keys, CancellationToken cancellationToken) =>
        await keys.RevokeAsync(id, cancellationToken) ? TypedResults.NoContent() : Problems.Of(ProblemKind.NotFound, $"No active API key {id}.", "id");

    internal static async Task<Results<Ok<ChannelView>, ProblemHttpResult>> ConfigureChannelAsync(
        string id, ChannelRequest request, IGrainFactory grains, ChannelSettingsCatalog catalog, ChannelSettingsChecks checks, ChannelAccountDirectory directory, CancellationToken cancellationToken) =>
        await ConfigureChannelIfAsync(id, request, expectedUpdatedAt: null, grains, catalog, checks, directory, cancellationToken);

    /// <summary>With <paramref name="expectedUpdatedAt"/>: only over that version of the account (the widget page's save).</summary>
    internal static async Task<Results<Ok<ChannelView>, ProblemHttpResult>> ConfigureChannelIfAsync(
        string id, ChannelRequest request, DateTimeOffset? expectedUpdatedAt, IGrainFactory grains, ChannelSettingsCatalog catalog, ChannelSettingsChecks checks,
        ChannelAccountDirectory directory, CancellationToken cancellationToken)
    {
        if (!GrainKeys.IsValidChannelAccountId(id))
            return Problems.Invalid("id", "A channel id is 1-64 lower-case letters, digits or '-'.");
        if (request.Kind is not { } kind)
            return Problems.Invalid("kind", $"kind is required: one of {string.Join(", ", catalog.Kinds.Select(k => JsonNamingPolicy.CamelCase.ConvertName(k.ToString())))}.");
        if (request.Secret is { Length: < 16 })
            return Problems.Invalid("secret", "A channel secret needs at least 16 characters (or leave it out to have one generated).");
        if (request.Name is { Length: > 100 })
            return Problems.Invalid("name", "name is at most 100 characters.");
        // The shape before typed settings put webhookUrl at the top level; it still works, settings win.
        var settings = request.Settings;
        if (request.WebhookUrl is not null && settings?.ContainsKey("webhookUrl") != true)
            (settings ??= [])["webhookUrl"] = request.WebhookUrl;
        try
        {
            // Parsed, then checked by the kind's connector (Telegram: getMe) before anything is saved.
            var parsed = await checks.ParseAsync(id, kind, settings, request.Enabled ?? true, cancellationToken);
            var configured = await grains.GetGrain<IChannelAccountGrain>(id).ConfigureAsync(new ChannelAccountSettings
            {
                Kind = kind,
                Name = request.Name ?? id,
                Enabled = request.Enabled ?? true,
                Settings = parsed.PublicJson,
                SecretSettings = parsed.Secrets,
                Secret = request.Secret,
                ExpectedUpdatedAt = expectedUpdatedAt,
            }, cancellationToken);
            // This node sees the change at once; the others through the change feed.
            await directory.RefreshSoonAsync(id, CancellationToken.None);
            return TypedResults.Ok(ChannelView.Of(configured.Account, configured.IssuedSecret));
        }
        catch (DomainException ex)
        {
            return Problems.From(ex);
        }
    }

    internal static async Task<Results<Ok<ChannelView>, ProblemHttpResult>> RotateChannelSecretAsync(
        string id, IGrainFactory grains, ChannelAccountDirectory directory, CancellationToken cancellationToken)
    {
        if (!GrainKeys.IsValidChannelAccountId(id))
            return Problems.Of(ProblemKind.NotFound, $"No channel '{id}'.", "id");
        try
        {
            var rotated = await grains.GetGrain<IChannelAccountGrain>(id).RotateSecretAsync(cancellationToken);
            await directory.RefreshSoonAsync(id, CancellationToken.None);
            return TypedResults.Ok(ChannelView.Of(rotated.Account, rotated.IssuedSecret));
        }
        catch (DomainException ex)
        {
            return Problems.From(ex);
        }
    }

    internal static async Task<Results<Ok<ChannelView>, ProblemHttpResult>> GetChannelAsync(string id, IGrainFactory grains, IMailboxStateStore state, CancellationToken cancellationToken)
    {
        if (!GrainKeys.IsValidChannelAccountId(id) || await grains.GetGrain<IChannelAccountGrain>(id).GetAsync() is not { } channel)
            return Problems.Of(ProblemKind.NotFound, $"No channel '{id}'.", "id");
        // Recorded by connectors that say when their source last delivered something (Telegram: the last update).
        var received = await state.GetCursorAsync(id, ChannelActivity.ReceivedFolder, cancellationToken);
        return TypedResults.Ok(ChannelView.Of(channel, issuedSecret: null) with
        {
            LastReceivedAt = received is { UidValidity: > 0 } r ? DateTimeOffset.FromUnixTimeSeconds(r.UidValidity) : null,
        });
    }
}

/// <summary>
/// A channel account in the admin API. Never carries a stored secret: <see cref="Secret"/> is present only in the
/// answer that issued it (creation with a generated secret, rotate-secret). <see cref="WebhookUrl"/> repeats the API
/// kind's setting for clients of the shape before typed settings.
/// </summary>
public sealed record ChannelView(
    string Id, ChannelKind Kind, string Name, bool Enabled, JsonElement Settings, IReadOnlyList<string> SecretSettings, bool HasSecret,
    string? WebhookUrl, DateTimeOffset? LastSuccessAt, DateTimeOffset? LastErrorAt, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Secret { get; init; }

    /// <summary>Whether the connector reached its server since its last error: true after a success newer than any
    /// error, false when the last report is an error, null before either.</summary>
    public bool? Connected => LastErrorAt is { } error && (LastSuccessAt is not { } ok || error > ok) ? false
        : LastSuccessAt is not null ? true : null;

    /// <summary>When the source last delivered something (a Telegram update), for connectors that record it
    /// (<see cref="ChannelActivity.ReceivedFolder"/>); only on GET.</summary>
    public DateTimeOffset? LastReceivedAt { get; init; }

    public static ChannelView Of(ChannelAccountSnapshot account, string? issuedSecret)
    {
        using var settings = JsonDocument.Parse(account.Settings ?? "{}");
        var webhookUrl = settings.RootElement.TryGetProperty("webhookUrl", out var url) && url.ValueKind == JsonValueKind.String ? url.GetString() : null;
        return new ChannelView(account.Id, account.Kind, account.Name, account.Enabled, settings.RootElement.Clone(), account.SecretSettings, account.HasSecret,
            webhookUrl, account.LastSuccessAt, account.LastErrorAt, account.LastError, account.CreatedAt, account.UpdatedAt)
        { Secret = issuedSecret };
    }
}

public sealed record ChangeFeedView(long Head, IReadOnlyList<ChangeConsumerView> Consumers, IReadOnlyList<string> PruneHeldBackBy);

public sealed record ChangeConsumerView(string Name, long? Cursor, long? Lag, DateTimeOffset? LastHandledAt, int Failures, DateTimeOffset? FailingSince, string? LastError);
