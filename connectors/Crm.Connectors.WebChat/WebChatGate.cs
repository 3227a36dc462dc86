using System.Threading.RateLimiting;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Crm.Connectors.WebChat;

/// <summary>
/// In front of every web chat request (the visitor API under /api/v1/webchat/{widget} and the hub at /hubs/visitor,
/// negotiation, WebSocket upgrade and every long poll): the widget must exist and be enabled, the request's Origin must
/// be in that widget's allow-list (a page elsewhere cannot even connect), and the hub's requests must carry a valid
/// visitor token for that widget. Answers CORS for the widget's own origins only (no credentials: the visitor token is
/// a header, never a cookie), including the preflights.
/// </summary>
internal sealed class WebChatGate(RequestDelegate next, IChannelAccounts accounts, VisitorTokens tokens)
{
    internal const string ApiPrefix = "/api/v1/webchat";
    private static readonly string[] AllowedHeaders = ["authorization", "content-type", "x-requested-with", "x-signalr-user-agent"];

    public static bool Applies(HttpContext http) =>
        http.Request.Path.StartsWithSegments(VisitorHub.Path) || http.Request.Path.StartsWithSegments(ApiPrefix);

    public async Task InvokeAsync(HttpContext http)
    {
        var isHub = http.Request.Path.StartsWithSegments(VisitorHub.Path);
        var widgetId = isHub ? http.Request.Query["widget"].ToString() : WidgetIdOfPath(http.Request.Path);
        var settings = WidgetOf(accounts, widgetId);
        if (settings is null)
        {
            await WriteProblemAsync(http, ProblemKind.NotFound, $"There is no enabled web chat widget '{widgetId}'; check data-channel in the script tag.", "widget");
            return;
        }
        var origin = http.Request.Headers.Origin.ToString();
        if (!settings.AllowsOrigin(origin))
        {
            await WriteProblemAsync(http, ProblemKind.Forbidden,
                origin.Length == 0
                    ? "The request has no Origin; the widget's API answers pages of its allowed origins only."
                    : $"The site {origin} may not use widget '{widgetId}'; an admin can add it to the widget's allowedOrigins.", "origin");
            return;
        }
        AddCors(http.Response, origin);
        if (HttpMethods.IsOptions(http.Request.Method) && http.Request.Headers.ContainsKey("Access-Control-Request-Method"))
        {
            http.Response.Headers.AccessControlAllowMethods = "GET, POST";
            var requested = http.Request.Headers.AccessControlRequestHeaders.ToString()
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Where(h => AllowedHeaders.Contains(h, StringComparer.OrdinalIgnoreCase));
            http.Response.Headers.AccessControlAllowHeaders = string.Join(", ", requested);
            http.Response.Headers.AccessControlMaxAge = "600";
            http.Response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }
        if (isHub && tokens.Read(TokenOf(http), widgetId!) is null)
        {
            await WriteProblemAsync(http, ProblemKind.Unauthorized, "The visitor token is missing, expired or not for this widget; start a new session (POST /api/v1/webchat/{widget}/sessions).", "token");
            return;
        }
        await next(http);
    }

    /// <summary>The widget's settings, when it exists, is a web chat widget and is enabled.</summary>
    public static WebChatSettings? WidgetOf(IChannelAccounts accounts, string? widgetId) =>
        !string.IsNullOrEmpty(widgetId) && accounts.Find(widgetId) is { Kind: ChannelKind.WebChat, Enabled: true } account
            ? account.SettingsAs<WebChatSettings>() ?? new WebChatSettings()
            : null;

    /// <summary>The visitor token of a hub request: the Authorization header (negotiation, long polling) or, for the
    /// WebSocket upgrade a browser cannot add headers to, the access_token query parameter.</summary>
    public static string? TokenOf(HttpContext http)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.Ordinal))
            return header["Bearer ".Length..].Trim();
        return http.Request.Query["access_token"].ToString() is { Length: > 0 } query ? query : null;
    }

    internal static void AddCors(HttpResponse response, string origin)
    {
        response.Headers.AccessControlAllowOrigin = origin;
        response.Headers.Vary = StringValues.Concat(response.Headers.Vary, "Origin");
    }

    private static string? WidgetIdOfPath(PathString path)
    {
        var rest = path.Value![ApiPrefix.Length..].TrimStart('/');
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? rest : rest[..slash];
    }

    internal static async Task WriteProblemAsync(HttpContext http, ProblemKind kind, string detail, string? field)
    {
        var problem = Problems.Details(kind, detail, field);
        http.Response.StatusCode = problem.Status!.Value;
        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem });
    }
}

/// <summary>
/// The per-address budget of the widget's HTTP endpoints and hub negotiations (ASP.NET Core rate limiting). A refusal
/// says in words how long to wait, with CORS headers so the widget can read it and show it.
/// </summary>
internal sealed class WebChatRateLimitPolicy(IOptions<WebChatOptions> options, IChannelAccounts accounts) : IRateLimiterPolicy<string>
{
    public const string Name = "webchat";

    public Func<OnRejectedContext, CancellationToken, ValueTask>? OnRejected => async (context, _) =>
    {
        var http = context.HttpContext;
        var seconds = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)) : 10;
        http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var origin = http.Request.Headers.Origin.ToString();
        var widgetId = http.Request.Query["widget"].ToString() is { Length: > 0 } w ? w : http.Request.RouteValues["widget"] as string;
        if (WebChatGate.WidgetOf(accounts, widgetId)?.AllowsOrigin(origin) == true)
            WebChatGate.AddCors(http.Response, origin);
        await WebChatGate.WriteProblemAsync(http, ProblemKind.RateLimited, $"Too many requests from your network. Please wait {seconds} seconds and try again.", null);
    };

    public RateLimitPartition<string> GetPartition(HttpContext http)
    {
        // On the hub only negotiation counts (each new connection negotiates first): the polls and sends of an open
        // long-polling connection are its traffic, budgeted per call inside the hub; counting them here would let two
        // visitors typing behind one address exhaust it and drop each other's connections.
        if (http.Request.Path.StartsWithSegments(VisitorHub.Path, out var rest) && rest != "/negotiate")
            return RateLimitPartition.GetNoLimiter("hub-connection");
        var perMinute = options.Value.RequestsPerMinutePerAddress;
        return RateLimitPartition.GetTokenBucketLimiter(VisitorHub.AddressOf(http), _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = Math.Max(10, perMinute / 4),
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1) / perMinute,
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }
}
