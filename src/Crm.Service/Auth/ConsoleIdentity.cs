using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using System.Security.Cryptography;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Crm.Service.Auth;

/// <summary>The console's roles (ASP.NET Core Identity). API keys keep their own lower-case roles (<see cref="Roles"/>).</summary>
public static class ConsoleRoles
{
    public const string Admin = "Admin";
    public const string Supervisor = "Supervisor";
    public const string Agent = "Agent";
    public const string KnowledgeEditor = "KnowledgeEditor";

    public static readonly IReadOnlyList<string> All = [Admin, Supervisor, Agent, KnowledgeEditor];
}

/// <summary>Authorization policies of the console's pages and hub. Each names the cookie scheme, so an API key never opens a page.</summary>
public static class ConsolePolicies
{
    public const string SignedIn = "console-signed-in";
    /// <summary>Queues, tickets and customers: agents and supervisors. An Admin or KnowledgeEditor without one of those sees no tickets.</summary>
    public const string Tickets = "console-tickets";
    public const string Admin = "console-admin";
}

/// <summary>Settings of the console's sign-in (section "Console").</summary>
public sealed class ConsoleOptions
{
    public const string Section = "Console";

    /// <summary>The code the one-time setup page asks for. When unset, a random one is generated at start and written
    /// to the log while no account exists, so only someone who can read the server's log can become the first admin.</summary>
    [MinLength(16)]
    public string? SetupToken { get; set; }

    /// <summary>Mark cookies Secure even when the request came over plain HTTP (set it behind a TLS-terminating proxy
    /// whose forwarded headers are not configured). Otherwise they are Secure whenever the request is HTTPS.</summary>
    public bool SecureCookiesOnly { get; set; }

    [Range(8, 128)]
    public int PasswordMinLength { get; set; } = 12;

    [Range(1, 100)]
    public int MaxFailedSignIns { get; set; } = 5;

    public TimeSpan LockoutDuration { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How long a sign-in lasts without activity.</summary>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromHours(10);

    /// <summary>Posts of the sign-in and setup forms one client address may make per minute (more are answered 429).</summary>
    [Range(1, 10_000)]
    public int SignInPostsPerMinute { get; set; } = 20;

    /// <summary>How often a signed-in session is checked against the account (disabled, roles changed, signed out
    /// everywhere): at most this long after an admin disables someone, their pages stop working.</summary>
    public TimeSpan SessionRecheckInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The address customers reach the help center at (e.g. https://help.example.com): help-center links the
    /// console puts into replies start with it. Unset, they use the console request's own scheme and host, which
    /// behind a proxy or on an internal host name is not what a customer can open.</summary>
    [Url]
    public string? PublicBaseUrl { get; set; }
}

/// <summary>
/// Creates the first admin exactly once. The setup page and the <c>--create-admin</c> switch both go through it; once
/// any account exists it refuses, so the page locks itself after its first use.
/// </summary>
public sealed class FirstAdminSetup(IServiceScopeFactory scopes, IOptions<ConsoleOptions> options, StoreInitializer store, ILogger<FirstAdminSetup> logger)
{
    private readonly SemaphoreSlim _creating = new(1, 1);
    private readonly Lazy<string> _generatedToken = new(() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)));

    public string SetupToken => options.Value.SetupToken ?? _generatedToken.Value;

    public async Task<bool> IsOpenAsync(CancellationToken cancellationToken)
    {
        await store.EnsureInitializedAsync(cancellationToken);
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<CrmDbContext>();
        return !await db.Users.AnyAsync(cancellationToken);
    }

    /// <summary>Logs where to go and the setup code while no account exists.</summary>
    public async Task AnnounceAsync(CancellationToken cancellationToken)
    {
        if (!await IsOpenAsync(cancellationToken))
            return;
        if (options.Value.SetupToken is null)
            logger.LogWarning("No console account exists yet: open /Setup and enter the setup code {SetupCode} to create the first admin (or start with --create-admin)", SetupToken);
        else
            logger.LogWarning("No console account exists yet: open /Setup and enter the setup code from Console:SetupToken to create the first admin");
    }

    /// <summary>Creates the first account with every role; fails when an account already exists or the password is refused.</summary>
    public async Task<IdentityResult> CreateAsync(string email, string password, CancellationToken cancellationToken)
    {
        await _creating.WaitAsync(cancellationToken);
        try
        {
            if (!await IsOpenAsync(cancellationToken))
                return IdentityResult.Failed(new IdentityError { Code = "SetupClosed", Description = "The first admin already exists; setup is closed." });
            using var scope = scopes.CreateScope();
            await EnsureRolesAsync(scope.ServiceProvider);
            var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
            var user = new IdentityUser { UserName = email, Email = email, EmailConfirmed = true };
            var created = await users.CreateAsync(user, password);
            if (!created.Succeeded)
                return created;
            // Every role, so the first person can both administer and work tickets until others are invited.
            var roles = await users.AddToRolesAsync(user, ConsoleRoles.All);
            if (roles.Succeeded)
                logger.LogInformation("Created the first console admin {Email}", email);
            return roles;
        }
        finally
        {
            _creating.Release();
        }
    }

    internal static async Task EnsureRolesAsync(IServiceProvider services)
    {
        var roles = services.GetRequiredService<RoleManager<IdentityRole>>();
        foreach (var role in ConsoleRoles.All)
            if (!await roles.RoleExistsAsync(role))
                await roles.CreateAsync(new IdentityRole(role));
    }
}

/// <summary>Creates the roles once the store is migrated, and announces the setup page while no account exists.</summary>
internal sealed class ConsoleIdentityStartup(IServiceScopeFactory scopes, StoreInitializer store, FirstAdminSetup setup) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await store.EnsureInitializedAsync(cancellationToken);
        using (var scope = scopes.CreateScope())
            await FirstAdminSetup.EnsureRolesAsync(scope.ServiceProvider);
        await setup.AnnounceAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

public static class ConsoleIdentityExtensions
{
    /// <summary>The scheme every request authenticates with by default: the API key under /api, the console cookie elsewhere.
    /// A signed-in browser therefore cannot call the JSON API with its cookie (which has no anti-forgery check).</summary>
    public const string RequestScheme = "crm";

    public static IHostApplicationBuilder AddConsoleIdentity(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ConsoleOptions>().BindConfiguration(ConsoleOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.LockoutDuration > TimeSpan.Zero && o.SessionIdleTimeout > TimeSpan.Zero, "Console:LockoutDuration and Console:SessionIdleTimeout must be positive.")
            .Validate(o => o.SessionRecheckInterval >= TimeSpan.Zero, "Console:SessionRecheckInterval must not be negative.")
            .ValidateOnStart();
        // Identity's stores take a scoped context; it comes from the pool like every other read.
        services.TryAddScoped(provider => provider.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContext());
        services.AddIdentity<IdentityUser, IdentityRole>(identity =>
            {
                identity.User.RequireUniqueEmail = true;
                identity.Password.RequireDigit = false;
                identity.Password.RequireLowercase = false;
                identity.Password.RequireUppercase = false;
                identity.Password.RequireNonAlphanumeric = false;
                identity.Password.RequiredUniqueChars = 4;
                identity.Lockout.AllowedForNewUsers = true;
            })
            .AddEntityFrameworkStores<CrmDbContext>();
        // Length over composition rules (NIST SP 800-63B); both from configuration.
        services.AddOptions<IdentityOptions>().Configure<IOptions<ConsoleOptions>>((identity, console) =>
        {
            identity.Password.RequiredLength = console.Value.PasswordMinLength;
            identity.Lockout.MaxFailedAccessAttempts = console.Value.MaxFailedSignIns;
            identity.Lockout.DefaultLockoutTimeSpan = console.Value.LockoutDuration;
        });
        services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.ApplicationScheme).Configure<IOptions<ConsoleOptions>>((cookie, console) =>
        {
            cookie.LoginPath = "/Account/Login";
            cookie.LogoutPath = "/Account/Logout";
            cookie.AccessDeniedPath = "/Account/AccessDenied";
            cookie.Cookie.Name = "crm.console";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Strict;
            cookie.Cookie.SecurePolicy = console.Value.SecureCookiesOnly ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
            cookie.ExpireTimeSpan = console.Value.SessionIdleTimeout;
            cookie.SlidingExpiration = true;
        });
        services.AddAntiforgery();
        services.AddOptions<AntiforgeryOptions>().Configure<IOptions<ConsoleOptions>>((antiforgery, console) =>
        {
            antiforgery.Cookie.Name = "crm.antiforgery";
            antiforgery.Cookie.SameSite = SameSiteMode.Strict;
            antiforgery.Cookie.SecurePolicy = console.Value.SecureCookiesOnly ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
        });

        services.AddAuthentication().AddPolicyScheme(RequestScheme, "API key under /api, console cookie elsewhere", scheme =>
            scheme.ForwardDefaultSelector = http => http.Request.Path.StartsWithSegments("/api")
                ? ApiKeyAuthenticationHandler.SchemeName
                : IdentityConstants.ApplicationScheme);
        // After AddIdentity, which would make the cookie the default everywhere (and so break API-key rate limiting).
        services.Configure<AuthenticationOptions>(authentication =>
        {
            authentication.DefaultScheme = RequestScheme;
            authentication.DefaultAuthenticateScheme = RequestScheme;
            authentication.DefaultChallengeScheme = RequestScheme;
            authentication.DefaultForbidScheme = RequestScheme;
            authentication.DefaultSignInScheme = IdentityConstants.ApplicationScheme;
            authentication.DefaultSignOutScheme = IdentityConstants.ApplicationScheme;
        });
        services.AddAuthorizationBuilder()
            .AddPolicy(ConsolePolicies.SignedIn, policy => policy.AddAuthenticationSchemes(IdentityConstants.ApplicationScheme).RequireAuthenticatedUser())
            .AddPolicy(ConsolePolicies.Tickets, policy => policy.AddAuthenticationSchemes(IdentityConstants.ApplicationScheme)
                .RequireRole(ConsoleRoles.Agent, ConsoleRoles.Supervisor))
            .AddPolicy(ConsolePolicies.Admin, policy => policy.AddAuthenticationSchemes(IdentityConstants.ApplicationScheme)
                .RequireRole(ConsoleRoles.Admin));

        services.AddOptions<SecurityStampValidatorOptions>().Configure<IOptions<ConsoleOptions>>((stamp, console) =>
            stamp.ValidationInterval = console.Value.SessionRecheckInterval);
        services.AddSingleton<SignInThrottle>();
        services.AddSingleton<FirstAdminSetup>();
        services.AddHostedService<ConsoleIdentityStartup>();
        return builder;
    }

    /// <summary>The audit actor for a console user: "user:{name}" (API keys are "apikey:{name}").</summary>
    public static string ConsoleActor(this ClaimsPrincipal user) => "user:" + (user.Identity?.Name ?? "unknown");
}
