using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Unicode;
using Crm.Service.Auth;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Changes;
using Microsoft.AspNetCore.Localization;

namespace Crm.Service.AgentConsole;

public static class AgentConsoleExtensions
{
    /// <summary>Set in HttpContext.Items by a page the console frames itself; every other page is sent with DENY.</summary>
    public const string FrameableByConsole = "crm.frameable-by-console";

    private static readonly CultureInfo[] Cultures = [new("en"), new("zh-CN")];

    /// <summary>The agent console: Razor Pages (each folder behind its role), the agents' hub fed from the change feed,
    /// the queue counts and the UI strings (en, zh-CN).</summary>
    public static IHostApplicationBuilder AddAgentConsole(this IHostApplicationBuilder builder)
    {
        builder.Services.AddLocalization(options => options.ResourcesPath = "Resources");
        // Chinese and every other script as characters, not numeric entities; HTML's special characters stay encoded.
        builder.Services.Configure<Microsoft.Extensions.WebEncoders.WebEncoderOptions>(options =>
            options.TextEncoderSettings = new TextEncoderSettings(UnicodeRanges.All));
        builder.Services.AddRazorPages(pages =>
        {
            // Deny by default: every page needs a signed-in person unless it is one of the few anonymous ones.
            pages.Conventions.AuthorizeFolder("/", ConsolePolicies.SignedIn);
            pages.Conventions.AuthorizeFolder("/Queues", ConsolePolicies.Tickets);
            pages.Conventions.AuthorizeFolder("/Tickets", ConsolePolicies.Tickets);
            pages.Conventions.AuthorizeFolder("/Customers", ConsolePolicies.Tickets);
            pages.Conventions.AuthorizeFolder("/Admin", ConsolePolicies.Admin);
            pages.Conventions.AuthorizeFolder("/Search", ConsolePolicies.Tickets);
            pages.Conventions.AuthorizeFolder("/Replies", ConsolePolicies.Tickets);
            pages.Conventions.AuthorizeFolder("/FollowUps", ConsolePolicies.Tickets);
            pages.Conventions.AllowAnonymousToPage("/Account/Login");
            pages.Conventions.AllowAnonymousToPage("/Account/AccessDenied");
            pages.Conventions.AllowAnonymousToPage("/Setup");
        }).AddViewLocalization();
        builder.Services.AddSignalR();
        builder.Services.AddSingleton<QueueCounts>();
        builder.Services.AddSingleton<TicketAccess>();
        builder.Services.AddSingleton<PersonalApiKeys>();
        builder.Services.AddSingleton<AgentPresence>();
        builder.Services.AddSingleton<IAgentPresence>(provider => provider.GetRequiredService<AgentPresence>());
        // Replaces the web chat's default (always available).
        builder.Services.AddSingleton<Crm.Connectors.Abstractions.IAgentAvailability, PresenceAvailability>();
        builder.Services.AddSingleton<TicketViewers>();
        builder.Services.AddSingleton<AgentActivityRelay>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<AgentActivityRelay>());
        builder.Services.AddSingleton<MacroRunner>();
        builder.Services.AddSingleton<AgentConnections>();
        builder.Services.AddSingleton<Mentions>();
        builder.Services.AddSingleton<Crm.Service.Api.CallLog>();
        builder.Services.AddSingleton<Crm.Service.Infrastructure.Notifications.NotificationSettingsStore>();
        Crm.Service.Infrastructure.Notifications.NoticeExtensions.AddNotices(builder.Services);
        Crm.Service.Infrastructure.Documents.DocumentExtensions.AddCustomerDocuments(builder.Services, builder.Configuration);
        // Replaces the log-only default of the SLA clocks.
        builder.Services.AddSingleton<Crm.Service.Grains.Sla.ISlaNotifier, HubSlaNotifier>();
        builder.Services.AddSingleton<Crm.Service.Grains.FollowUps.IFollowUpNotifier, HubFollowUpNotifier>();
        builder.Services.AddSingleton<PresenceToQueues>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<PresenceToQueues>());
        builder.Services.AddSingleton<Crm.Service.Grains.Assignment.IAgentPresenceLookup, HubPresenceLookup>();
        builder.Services.AddSingleton<TeamDirectoryAccess>();
        builder.Services.AddHostedService<PresenceBroadcaster>();
        builder.Services.AddChangeConsumer<LiveConsoleFeed>();
        return builder;
    }

    /// <summary>Security headers for the console's responses and the UI language (from the "crm.culture" cookie or Accept-Language).</summary>
    public static WebApplication UseAgentConsole(this WebApplication app)
    {
        app.UseSignInThrottle();
        app.Use((http, next) =>
        {
            if (!http.Request.Path.StartsWithSegments("/api"))
                http.Response.OnStarting(() =>
                {
                    var headers = http.Response.Headers;
                    // No inline script anywhere: user content that slipped through encoding could still not run.
                    if (string.IsNullOrEmpty(headers.ContentSecurityPolicy))
                        headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
                            "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
                    headers.XContentTypeOptions = "nosniff";
                    // A page that set a stricter one keeps it (the body frame's no-referrer: review RC5).
                    if (string.IsNullOrEmpty(headers["Referrer-Policy"]))
                        headers["Referrer-Policy"] = "same-origin";
                    // Framing is opt-in: only a page the console frames itself (the web chat widget's preview) marks its
                    // response; anti-forgery's SAMEORIGIN on every page with a form is overwritten (review WC1).
                    headers.XFrameOptions = http.Items.ContainsKey(FrameableByConsole) ? "SAMEORIGIN" : "DENY";
                    return Task.CompletedTask;
                });
            return next(http);
        });
        // The console's CSS and JS bundle (public files, no user data).
        app.UseStaticFiles();
        app.UseRequestLocalization(options =>
        {
            options.DefaultRequestCulture = new RequestCulture("en");
            options.SupportedCultures = Cultures;
            options.SupportedUICultures = Cultures;
            options.RequestCultureProviders = [new CookieRequestCultureProvider { CookieName = "crm.culture" }, new AcceptLanguageHeaderRequestCultureProvider()];
        });
        return app;
    }

    public static IEndpointRouteBuilder MapAgentConsole(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapRazorPages();
        endpoints.MapHub<AgentHub>("/hubs/agents");
        return endpoints;
    }

    /// <summary>
    /// <c>--create-admin you@example.com</c> (password from the CRM_ADMIN_PASSWORD environment variable, never from the
    /// command line, where other users could read it): creates the first admin and exits instead of serving.
    /// </summary>
    public static async Task<bool> RunConsoleCommandAsync(this WebApplication app)
    {
        if (app.Configuration["create-admin"] is not { } email)
            return false;
        var password = Environment.GetEnvironmentVariable("CRM_ADMIN_PASSWORD");
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Crm.Service.Setup");
        if (string.IsNullOrEmpty(password))
        {
            logger.LogError("Set CRM_ADMIN_PASSWORD to the new admin's password");
            Environment.ExitCode = 2;
            return true;
        }
        var result = await app.Services.GetRequiredService<FirstAdminSetup>().CreateAsync(email, password, CancellationToken.None);
        if (!result.Succeeded)
        {
            logger.LogError("The first admin was not created: {Errors}", string.Join(" ", result.Errors.Select(e => e.Description)));
            Environment.ExitCode = 1;
        }
        return true;
    }
}
