using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Threading.RateLimiting;
using Crm.Service.Grains.Records;
using Crm.Service.Hosting;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Crm.Service.Auth;

public static class Roles
{
    public const string Admin = "admin";
    public const string Agent = "agent";
    /// <summary>Writes knowledge-base articles (and reads them); no access to tickets.</summary>
    public const string KnowledgeEditor = "knowledge-editor";

    public static bool IsValid(string role) => role is Admin or Agent or KnowledgeEditor;
}

/// <summary>Settings for API keys (section "Auth").</summary>
public sealed class AuthOptions
{
    public const string Section = "Auth";

    /// <summary>An admin key to create on start when it does not exist yet (e.g. from an environment variable),
    /// so a fresh deployment can create its other keys. At least 24 characters.</summary>
    public string? BootstrapAdminKey { get; set; }

    /// <summary>Agent and admin API requests per second one API key may make (token bucket); requests without a
    /// valid key share a bucket per client address, so keys cannot be guessed at speed.</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 1_000_000)]
    public int RequestsPerSecondPerClient { get; set; } = 50;

    [System.ComponentModel.DataAnnotations.Range(1, 10_000_000)]
    public int BurstPerClient { get; set; } = 500;
}

/// <summary>
/// Looks up API keys by their SHA-256 in an in-memory copy of the active keys (there are few), re-read every
/// <see cref="RefreshEvery"/> and at once after a key is created or revoked on this node. A made-up key therefore
/// costs no database query, and a key revoked on another node stops working within seconds.
/// </summary>
public sealed class ApiKeyDirectory(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, TimeProvider time)
{
    internal static readonly TimeSpan RefreshEvery = TimeSpan.FromSeconds(10);
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private volatile ActiveKeys? _active;

    private sealed record ActiveKeys(Dictionary<string, ApiKeyRecord> ByHash, DateTimeOffset Until);

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static string NewKey() => "crm_" + Base64Url(RandomNumberGenerator.GetBytes(32));

    public async Task<ApiKeyRecord?> FindAsync(string key, CancellationToken cancellationToken)
    {
        var hash = Hash(key);
        var active = await ActiveAsync(cancellationToken);
        return active.ByHash.GetValueOrDefault(hash);
    }

    private async ValueTask<ActiveKeys> ActiveAsync(CancellationToken cancellationToken)
    {
        if (_active is { } current && current.Until > time.GetUtcNow())
            return current;
        await _refreshing.WaitAsync(cancellationToken);
        try
        {
            if (_active is { } fresh && fresh.Until > time.GetUtcNow())
                return fresh;
            await initializer.EnsureInitializedAsync(cancellationToken);
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            var keys = await db.ApiKeys.AsNoTracking().Where(k => k.RevokedAt == null).ToListAsync(cancellationToken);
            var loaded = new ActiveKeys(keys.ToDictionary(k => k.KeyHash, StringComparer.Ordinal), time.GetUtcNow() + RefreshEvery);
            _active = loaded;
            return loaded;
        }
        finally
        {
            _refreshing.Release();
        }
    }

    /// <summary>The key's record whether or not it is revoked; never cached, for the rare callers that must tell the two apart.</summary>
    public async Task<ApiKeyRecord?> FindIncludingRevokedAsync(string key, CancellationToken cancellationToken)
    {
        var hash = Hash(key);
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.KeyHash == hash, cancellationToken);
    }

    public async Task<(ApiKeyRecord Record, string Key)> CreateAsync(string name, string role, string? key = null, CancellationToken cancellationToken = default, string? ownerId = null)
    {
        key ??= NewKey();
        var record = new ApiKeyRecord { Id = Guid.CreateVersion7(), Name = name, Role = role, KeyHash = Hash(key), CreatedAt = time.GetUtcNow(), OwnerId = ownerId };
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        db.ApiKeys.Add(record);
        await db.SaveChangesAsync(cancellationToken);
        _active = null;
        return (record, key);
    }

    public Task<bool> RevokeAsync(Guid id, CancellationToken cancellationToken) => RevokeAsync(id, ownerId: null, cancellationToken);

    /// <summary>Revokes an active key; given <paramref name="ownerId"/>, only a key of that person (a person revoking their own).</summary>
    public async Task<bool> RevokeAsync(Guid id, string? ownerId, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var keys = db.ApiKeys.Where(k => k.Id == id && k.RevokedAt == null);
        if (ownerId is not null)
            keys = keys.Where(k => k.OwnerId == ownerId);
        var revoked = await keys.ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, time.GetUtcNow()), cancellationToken);
        _active = null;
        return revoked > 0;
    }

    /// <summary>Every key of one person, newest first (hashes only; a key is shown once, when it is made).</summary>
    public async Task<IReadOnlyList<ApiKeyRecord>> OfOwnerAsync(string ownerId, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.ApiKeys.AsNoTracking().Where(k => k.OwnerId == ownerId).OrderByDescending(k => k.CreatedAt).Take(200).ToListAsync(cancellationToken);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>Authenticates "Authorization: Bearer {key}" or "X-Api-Key: {key}".</summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyDirectory keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? key = Request.Headers["X-Api-Key"];
        var authorization = Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(key) && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            key = authorization["Bearer ".Length..].Trim();
        if (string.IsNullOrEmpty(key))
            return AuthenticateResult.NoResult();
        var record = await keys.FindAsync(key, Context.RequestAborted);
        if (record is null)
            return AuthenticateResult.Fail("Unknown or revoked API key.");
        List<Claim> claims = [new Claim(ClaimTypes.NameIdentifier, record.Id.ToString()), new Claim(ClaimTypes.Name, record.Name), new Claim(ClaimTypes.Role, record.Role)];
        // A personal key acts for its owner: who it is matters where a person (not a key) is named, e.g. a follow-up's owner.
        if (record.OwnerId is { Length: > 0 } ownerId)
            claims.Add(new Claim(ApiKeyAuthenticationExtensions.OwnerClaim, ownerId));
        var identity = new ClaimsIdentity(claims, SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }
}

/// <summary>Creates the bootstrap admin key once the store is ready. A revoked one stays revoked: an admin revoked
/// it on purpose (maybe it leaked), so start-up must neither bring it back nor fail because the setting is still there.</summary>
internal sealed class BootstrapAdminKey(ApiKeyDirectory keys, IOptions<AuthOptions> options, ILogger<BootstrapAdminKey> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.BootstrapAdminKey is not { } key)
            return;
        if (await keys.FindIncludingRevokedAsync(key, cancellationToken) is { } existing)
        {
            if (existing.RevokedAt is { } revokedAt)
                logger.LogWarning("The bootstrap admin API key from configuration (Auth:BootstrapAdminKey) was revoked at {RevokedAt} and stays revoked; remove the setting", revokedAt);
            return;
        }
        await keys.CreateAsync("bootstrap-admin", Roles.Admin, key, cancellationToken);
        logger.LogInformation("Created the bootstrap admin API key from configuration (Auth:BootstrapAdminKey)");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

public static class ApiKeyAuthenticationExtensions
{
    public const string AgentPolicy = "agent";
    public const string AdminPolicy = "admin";
    public const string RateLimitPolicy = "agent-api";
    /// <summary>Claim of a personal key: the console account (AspNetUsers.Id) it belongs to.</summary>
    public const string OwnerClaim = "crm:key-owner";

    public static IHostApplicationBuilder AddApiKeyAuthentication(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.Section)
            .ValidateDataAnnotations()
            .Validate(o => o.BootstrapAdminKey is null || o.BootstrapAdminKey.Length >= 24, "Auth:BootstrapAdminKey must be at least 24 characters.")
            .ValidateOnStart();
        builder.Services.AddRateLimiter(limiter => limiter.AddPolicy(RateLimitPolicy, http =>
        {
            var options = http.RequestServices.GetRequiredService<IOptions<AuthOptions>>().Value;
            // Keyed on the caller's key, so agents behind one proxy or NAT do not share a bucket. This needs the rate
            // limiter after authentication (UseCrmHttp); the coarse per-address limit runs before it.
            var partition = http.User.FindFirst(ClaimTypes.NameIdentifier)?.Value is { } keyId
                ? "key:" + keyId
                : "address:" + ClientAddress.Of(http);
            return RateLimitPartition.GetTokenBucketLimiter(partition, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = options.BurstPerClient,
                TokensPerPeriod = options.RequestsPerSecondPerClient,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            });
        }));
        builder.Services.AddSingleton<ApiKeyDirectory>();
        builder.Services.AddHostedService<BootstrapAdminKey>();
        builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AgentPolicy, policy => policy.RequireRole(Roles.Agent, Roles.Admin))
            .AddPolicy(AdminPolicy, policy => policy.RequireRole(Roles.Admin));
        return builder;
    }

    /// <summary>The audit actor for the caller: "apikey:{name}".</summary>
    public static string Actor(this ClaimsPrincipal user) => "apikey:" + (user.Identity?.Name ?? "unknown");

    /// <summary>The console account a personal API key belongs to; null for a system key.</summary>
    public static string? KeyOwnerId(this ClaimsPrincipal user) => user.FindFirst(OwnerClaim)?.Value;

    /// <summary>The id of the API key that authenticated the request: the scope of its Idempotency-Keys and rate limit.</summary>
    public static string KeyId(this ClaimsPrincipal user) =>
        user.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? throw new InvalidOperationException("The request is not authenticated by an API key.");
}
