using System.Reflection;
using System.Security.Cryptography;
using Crm.Connectors.Abstractions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.WebChat;

/// <summary>What any page of an allowed origin may read about a widget: its look and texts, never its origins or team.</summary>
public sealed record WidgetConfig(
    string Widget,
    LocalizedText Title,
    LocalizedText Greeting,
    string Colour,
    WidgetPosition Position,
    bool PreChatForm,
    bool AgentsOnline,
    bool EmailFeatures,
    int MaxMessageChars,
    int MaxUploadBytes,
    IReadOnlyList<string> UploadContentTypes);

public sealed record SessionRequest(string? Token, bool NewConversation = false);

/// <summary>The visitor's (possibly renewed) token and their conversation; the widget stores the token in localStorage.</summary>
public sealed record SessionResponse(string Token, string ConversationId, bool NewVisitor);

internal static class WebChatEndpoints
{
    private static readonly Lazy<(byte[] Body, string ETag)> Widget = new(() =>
    {
        using var stream = typeof(WebChatEndpoints).Assembly.GetManifestResourceStream("Crm.Connectors.WebChat.widget.js")
            ?? throw new InvalidOperationException("The widget bundle is not embedded; run connectors/Crm.Connectors.WebChat/ClientApp/build.sh.");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        var body = buffer.ToArray();
        return (body, "\"" + Convert.ToHexStringLower(SHA256.HashData(body))[..16] + "\"");
    });

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/widget.js", ServeWidget).AllowAnonymous();
        var visitor = endpoints.MapGroup(WebChatGate.ApiPrefix + "/{widget}").AllowAnonymous().RequireRateLimiting(WebChatRateLimitPolicy.Name);
        visitor.MapGet("/config", ConfigAsync);
        visitor.MapPost("/sessions", StartSession).WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(4096));
        visitor.MapPost("/uploads", VisitorUploads.UploadAsync).DisableAntiforgery()
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(VisitorUploads.MaxRequestBytes),
                new Microsoft.AspNetCore.Mvc.RequestFormLimitsAttribute { MultipartBodyLengthLimit = VisitorUploads.MaxRequestBytes, ValueCountLimit = 16 });
    }

    /// <summary>The widget's script: cached briefly (a new release reaches pages within minutes), revalidated by ETag.</summary>
    private static IResult ServeWidget(HttpContext http)
    {
        var (body, etag) = Widget.Value;
        http.Response.Headers.CacheControl = "public, max-age=300";
        http.Response.Headers.ETag = etag;
        http.Response.Headers.XContentTypeOptions = "nosniff";
        // Any site may load the script (the allow-list is enforced on the API and the hub, where it matters).
        http.Response.Headers.AccessControlAllowOrigin = "*";
        if (http.Request.Headers.IfNoneMatch == etag)
            return Results.StatusCode(StatusCodes.Status304NotModified);
        return Results.Bytes(body, "text/javascript; charset=utf-8");
    }

    private static async Task<Ok<WidgetConfig>> ConfigAsync(string widget, IChannelAccounts accounts, IAgentAvailability availability, WidgetMail mail, IOptions<WebChatOptions> options, CancellationToken cancellationToken)
    {
        // The gate has checked that the widget exists and the origin is allowed.
        var settings = WebChatGate.WidgetOf(accounts, widget)!;
        var online = await availability.AnyAgentOnlineAsync(settings.Team, cancellationToken);
        return TypedResults.Ok(new WidgetConfig(widget, settings.Title, settings.Greeting, settings.Colour, settings.Position, settings.PreChatForm,
            online, mail.AccountOf(settings) is not null, options.Value.MaxMessageChars, settings.MaxUploadBytes, settings.UploadContentTypes));
    }

    /// <summary>Starts or resumes a visitor: a valid token of the visitor's current generation keeps its visitor and
    /// conversation (renewed when due, or a new conversation when asked; either raises the generation, so the replaced
    /// token is refused from then on); a replaced token whose renewal answer was lost gets its successor again (same
    /// generation, same conversation, no new rotation) until the successor is first used or the recovery period ends
    /// (review W1); none, an invalid, revoked or too old one makes a new visitor, who can read nothing of anyone before. A
    /// blocked visitor is refused. A new visitor or conversation can open a ticket, so those are budgeted per address.</summary>
    private static async Task<Results<Ok<SessionResponse>, ProblemHttpResult>> StartSession(string widget, SessionRequest? request, VisitorTokens tokens,
        VisitorRateLimits limits, IGrainFactory grains, TimeProvider time, HttpContext http)
    {
        var visitor = tokens.Read(request?.Token, widget);
        VisitorStanding? standing = null;
        if (visitor is not null)
        {
            var grain = grains.GetGrain<IWebChatVisitorGrain>(visitor.VisitorKey);
            standing = await grain.GetAsync();
            if (standing.Blocked)
                return Problems.Of(ProblemKind.Forbidden, BlockedMessage);
            if (standing.CanRecover(visitor.Generation, time.GetUtcNow()))
            {
                // The answer of this token's renewal was lost: it fetches its successor again (idempotent: the same
                // generation and conversation, no new rotation), and can do nothing else (the hub refuses it). After a
                // new-conversation rotation the successor names the new conversation, kept with the rotation (review WV6).
                var successor = tokens.Renew(standing.RecoverSession is { } moved ? visitor with { SessionId = moved } : visitor, standing.Generation);
                return TypedResults.Ok(new SessionResponse(tokens.Issue(successor), successor.SessionId, false));
            }
            if (!standing.Accepts(visitor.Generation))
                visitor = null;
            else if (standing.RecoveryOpen)
                standing = await grain.SuccessorUsedAsync(visitor.Generation);
        }
        var isNew = visitor is null;
        if ((isNew || request!.NewConversation) && limits.TryAcquireNewSession(VisitorHub.AddressOf(http)) is { } wait)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Problems.Of(ProblemKind.RateLimited, $"Too many new chats from your network. Please wait {seconds} seconds and try again.");
        }
        if (visitor is null)
        {
            visitor = tokens.NewVisitor(widget);
            return TypedResults.Ok(new SessionResponse(tokens.Issue(visitor), visitor.SessionId, true));
        }
        if (request!.NewConversation || tokens.IsDueForRenewal(visitor))
        {
            // Both are recoverable (review W1, WV6): a new conversation's id is made first and kept with the rotation, so
            // a replaced token whose answer was lost gets that conversation back, not a new visitor (who would lose the
            // proven address and the customer link).
            var next = request.NewConversation ? tokens.NewSession(visitor, visitor.Generation) : null;
            var rotated = await grains.GetGrain<IWebChatVisitorGrain>(visitor.VisitorKey).RotateAsync(visitor.Generation, recoverable: true, newSession: next?.SessionId);
            if (rotated.Blocked)
                return Problems.Of(ProblemKind.Forbidden, BlockedMessage);
            visitor = next is not null ? next with { Generation = rotated.Generation } : tokens.Renew(visitor, rotated.Generation);
        }
        return TypedResults.Ok(new SessionResponse(tokens.Issue(visitor), visitor.SessionId, false));
    }

    internal const string BlockedMessage = "This chat is not available to you. If you think this is a mistake, please contact us by email.";
}
