using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.AspNetCore.SignalR;

namespace Crm.Connectors.WebChat;

/// <summary>What an agent's client reports while it works a web chat conversation: typing (renew every few
/// seconds while typing) and the newest visitor message it has shown.</summary>
public sealed record AgentActivity(bool? Typing, Guid? ReadUpTo);

/// <summary>An agent's or admin's block of a visitor; the reason is for colleagues, never shown to the visitor.</summary>
public sealed record VisitorBlock(string? Reason);

/// <summary>What the server holds about a conversation's visitor, for agents.</summary>
public sealed record VisitorStandingView(string Visitor, int Generation, bool Blocked, string? BlockReason, string? VerifiedEmail);

public static class WebChatExtensions
{
    /// <summary>Agents' endpoints are authorized with the host's agent policy (the API key or console roles).</summary>
    public const string AgentPolicy = "agent";

    /// <summary>The web chat channel: settings kind "webchat", visitor tokens, the visitors' hub and its limits, the push
    /// path and the outbound sender. Defaults for <see cref="IAgentAvailability"/> and <see cref="IArticleSuggestions"/>
    /// are registered only when the host has none.</summary>
    public static IHostApplicationBuilder AddWebChatChannel(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<WebChatOptions>().BindConfiguration(WebChatOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.TokenRenewAfter < o.TokenLifetime, "Channels:WebChat:TokenRenewAfter must be shorter than TokenLifetime.")
            .Validate(o => o.TokenLifetime <= o.TokenMaxAge, "Channels:WebChat:TokenLifetime must not be longer than TokenMaxAge.")
            .ValidateOnStart();
        builder.Services.AddChannelSettings<WebChatSettings>(ChannelKind.WebChat, IdentityKind.WebChat);
        builder.Services.AddDataProtection();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<VisitorTokens>();
        builder.Services.AddSingleton<VisitorRateLimits>();
        builder.Services.AddSingleton<VisitorConnections>();
        builder.Services.AddSingleton<WidgetMail>();
        builder.Services.AddSingleton<VisitorPushNode>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<VisitorPushNode>());
        builder.Services.AddSingleton<IOutboundSender, WebChatSender>();
        builder.Services.AddSingleton<IAgentActivitySink, WebChatAgentActivity>();
        builder.Services.TryAddSingleton<IAgentAvailability, AlwaysAvailable>();
        builder.Services.TryAddSingleton<IArticleSuggestions, NoArticleSuggestions>();
        builder.Services.AddSingleton<WebChatRateLimitPolicy>();
        builder.Services.AddRateLimiter(limiter => limiter.AddPolicy<string, WebChatRateLimitPolicy>(WebChatRateLimitPolicy.Name));
        // AddHubOptions copies the global hub options into the visitor hub's; the limits below then apply to it alone.
        builder.Services.AddSignalR().AddHubOptions<VisitorHub>(_ => { });
        builder.Services.AddOptions<HubOptions<VisitorHub>>().Configure<IOptions<WebChatOptions>>((hub, options) =>
        {
            hub.MaximumReceiveMessageSize = options.Value.MaxHubMessageBytes;
            hub.MaximumParallelInvocationsPerClient = 1;
            hub.EnableDetailedErrors = false;
            // Explicit, not inherited: a visitor whose client stopped answering (a closed laptop, a dead network) frees
            // its connection place within 30 s (the client pings every 15 s).
            hub.KeepAliveInterval = TimeSpan.FromSeconds(15);
            hub.ClientTimeoutInterval = TimeSpan.FromSeconds(30);
            hub.HandshakeTimeout = TimeSpan.FromSeconds(15);
        });
        return builder;
    }

    /// <summary>The origin gate in front of the visitors' requests, /widget.js, the visitor API, the hub and the
    /// agents' activity endpoint. Call after UseCrmHttp (routing and the rate limiter).</summary>
    public static WebApplication MapWebChat(this WebApplication app)
    {
        app.UseWhen(WebChatGate.Applies, branch => branch.UseMiddleware<WebChatGate>());
        WebChatEndpoints.Map(app);
        app.MapHub<VisitorHub>(VisitorHub.Path, options =>
            {
                // Long polls and the WebSocket upgrade pass the gate like every other request; SSE is not offered.
                options.Transports = HttpTransportType.WebSockets | HttpTransportType.LongPolling;
                options.ApplicationMaxBufferSize = 64 * 1024;
                options.TransportMaxBufferSize = 64 * 1024;
            })
            .AllowAnonymous()
            .RequireRateLimiting(WebChatRateLimitPolicy.Name);
        var agents = app.MapGroup("/api/v1/webchat-conversations/{widget}/{conversationId}").RequireAuthorization(AgentPolicy);
        agents.MapGet("/activity", GetActivityAsync);
        agents.MapPost("/activity", PostActivityAsync);
        agents.MapGet("/visitor", (string widget, string conversationId, IChannelAccounts accounts, IWebChatVisitorStore store, IGrainFactory grains, CancellationToken cancellationToken) =>
            OnVisitorAsync(widget, conversationId, accounts, store, grains, g => g.GetAsync(), cancellationToken));
        agents.MapPost("/visitor/revoke", (string widget, string conversationId, IChannelAccounts accounts, IWebChatVisitorStore store, IGrainFactory grains, CancellationToken cancellationToken) =>
            OnVisitorAsync(widget, conversationId, accounts, store, grains, g => g.RevokeAsync(), cancellationToken, ended: standing => standing.Generation));
        agents.MapPut("/visitor/block", (string widget, string conversationId, VisitorBlock block, IChannelAccounts accounts, IWebChatVisitorStore store, IGrainFactory grains, CancellationToken cancellationToken) =>
            block.Reason?.Length > 500
                ? Task.FromResult<Results<Ok<VisitorStandingView>, ProblemHttpResult>>(Problems.Invalid("reason", "reason is at most 500 characters."))
                : OnVisitorAsync(widget, conversationId, accounts, store, grains, g => g.BlockAsync(true, block.Reason), cancellationToken, ended: _ => int.MaxValue));
        agents.MapDelete("/visitor/block", (string widget, string conversationId, IChannelAccounts accounts, IWebChatVisitorStore store, IGrainFactory grains, CancellationToken cancellationToken) =>
            OnVisitorAsync(widget, conversationId, accounts, store, grains, g => g.BlockAsync(false, null), cancellationToken));
        return app;
    }

    private static async Task<Results<Ok<SessionActivity>, ProblemHttpResult>> GetActivityAsync(string widget, string conversationId, IGrainFactory grains, IChannelAccounts accounts) =>
        UnknownConversation(widget, conversationId, accounts) is { } problem
            ? problem
            : TypedResults.Ok(await grains.GetGrain<IWebChatSessionGrain>(GrainKeys.Conversation(widget, conversationId)).GetActivityAsync());

    private static async Task<Results<NoContent, ProblemHttpResult>> PostActivityAsync(string widget, string conversationId, AgentActivity activity, IGrainFactory grains, IChannelAccounts accounts)
    {
        if (UnknownConversation(widget, conversationId, accounts) is { } problem)
            return problem;
        await grains.GetGrain<IWebChatSessionGrain>(GrainKeys.Conversation(widget, conversationId)).AgentActivityAsync(activity.Typing, activity.ReadUpTo);
        return TypedResults.NoContent();
    }

    /// <summary>Reads or changes the standing of the visitor who wrote in the conversation; a revoke or block also closes
    /// the conversation's open connections made with a token it ended (on every node, through the session grain).</summary>
    private static async Task<Results<Ok<VisitorStandingView>, ProblemHttpResult>> OnVisitorAsync(string widget, string conversationId, IChannelAccounts accounts,
        IWebChatVisitorStore store, IGrainFactory grains, Func<IWebChatVisitorGrain, Task<VisitorStanding>> action, CancellationToken cancellationToken,
        Func<VisitorStanding, int>? ended = null)
    {
        if (UnknownConversation(widget, conversationId, accounts) is { } problem)
            return problem;
        if (await store.FindConversationIdentityAsync(widget, conversationId, cancellationToken) is not { } visitorKey)
            return Problems.NotFound("conversationId", $"Conversation '{conversationId}' of widget '{widget}' has no messages yet, so there is no visitor to act on.");
        var standing = await action(grains.GetGrain<IWebChatVisitorGrain>(visitorKey));
        if (ended is not null)
            await grains.GetGrain<IWebChatSessionGrain>(GrainKeys.Conversation(widget, conversationId))
                .PublishAsync(new VisitorEvent(VisitorEventKind.Ended, EndedBelow: ended(standing)));
        return TypedResults.Ok(new VisitorStandingView(visitorKey, standing.Generation, standing.Blocked, standing.BlockReason, standing.VerifiedEmail));
    }

    /// <summary>Only web chat widgets and well-formed session ids (32 hex digits) get a session grain.</summary>
    private static ProblemHttpResult? UnknownConversation(string widget, string conversationId, IChannelAccounts accounts) =>
        accounts.Find(widget) is not { Kind: ChannelKind.WebChat }
            ? Problems.NotFound("widget", $"There is no web chat widget '{widget}'.")
            : conversationId.Length != 32 || !conversationId.All(char.IsAsciiHexDigitLower)
                ? Problems.NotFound("conversationId", $"'{conversationId}' is not a web chat conversation id.")
                : null;
}
