using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.WebChat;

/// <summary>What the server pushes to a visitor's widget.</summary>
public interface IVisitorClient
{
    /// <summary>A new line of the visitor's conversation (an agent's reply; the visitor's own from another tab).</summary>
    Task Message(ChatLine line);

    Task Typing(bool agentTyping);

    /// <summary>An agent read the visitor's lines up to this message.</summary>
    Task Read(Guid upTo);
}

/// <summary>The answer to <see cref="VisitorHub.Send"/>: the message is durably stored (or was already: <see cref="Duplicate"/>).</summary>
public sealed record SendAck(Guid MessageId, string ClientMessageId, bool Duplicate, DateTimeOffset At);

public sealed record ChatHistory(string ConversationId, IReadOnlyList<ChatLine> Lines, Guid? AgentReadUpTo);

/// <summary>
/// The visitors' hub (/hubs/visitor), separate from the agents' hub. A connection is one visitor of one widget, as
/// named by the visitor token it connected with (checked here and, with the origin, by <see cref="WebChatGate"/> on
/// every HTTP request of the connection); every method takes the conversation id and refuses any but the token's,
/// so a visitor can only ever read and write their own conversation. A message is acknowledged (the method returns)
/// only after the hand-off stored it; its client message id makes a resend after a dropped connection a duplicate,
/// never a second message.
/// </summary>
public sealed partial class VisitorHub(
    VisitorTokens tokens,
    IChannelAccounts accounts,
    IInboundHandOff handOff,
    IConversationTranscripts transcripts,
    IArticleSuggestions suggestions,
    VisitorPushNode push,
    VisitorRateLimits limits,
    VisitorConnections connections,
    IGrainFactory grains,
    IOptions<WebChatOptions> options,
    TimeProvider time,
    ILogger<VisitorHub> logger) : Hub<IVisitorClient>
{
    internal const string Path = "/hubs/visitor";
    private const string VisitorItem = "crm.webchat.visitor";
    private const string AddressItem = "crm.webchat.address";
    internal const int MaxSuggestions = 3;

    public override async Task OnConnectedAsync()
    {
        var http = Context.GetHttpContext() ?? throw new HubException("No HTTP context.");
        var widgetId = http.Request.Query["widget"].ToString();
        var visitor = tokens.Read(WebChatGate.TokenOf(http), widgetId);
        if (visitor is null || WebChatGate.WidgetOf(accounts, widgetId) is not { } settings || !settings.AllowsOrigin(http.Request.Headers.Origin))
            throw new HubException("This visitor token is not valid for this widget; start a new session.");
        var address = AddressOf(http);
        if (connections.TryOpen(visitor, address) is { } refusal)
            throw new HubException(refusal);
        Context.Items[AddressItem] = address;
        Context.Items[VisitorItem] = visitor;
        await Groups.AddToGroupAsync(Context.ConnectionId, VisitorPushNode.Group(visitor.ConversationKey));
        await push.AttachAsync(visitor.ConversationKey);
        await base.OnConnectedAsync();
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        if (Context.Items.TryGetValue(VisitorItem, out var value) && value is Visitor visitor)
        {
            connections.Close(visitor, (string)Context.Items[AddressItem]!);
            await push.DetachAsync(visitor.ConversationKey);
        }
        await base.OnDisconnectedAsync(exception);
    }

    /// <summary>The conversation so far (from the store), for a visitor who comes back or reconnects. Budgeted per
    /// visitor and per address: each read costs two store queries and up to a few megabytes of JSON.</summary>
    public async Task<ChatHistory> History(string conversationId)
    {
        var visitor = Own(conversationId);
        if (limits.TryAcquireHistory(visitor, AddressOf(Context.GetHttpContext())) is { } wait)
            throw new HubException($"rate-limited: You are reloading the chat too quickly. Please wait {Seconds(wait)} seconds.");
        var entries = await transcripts.ReadAsync(visitor.WidgetId, visitor.SessionId, options.Value.HistorySize, Context.ConnectionAborted);
        var activity = await grains.GetGrain<IWebChatSessionGrain>(visitor.ConversationKey).GetActivityAsync();
        return new ChatHistory(visitor.SessionId, [.. entries.Select(e => LineOf(visitor, e))], activity.AgentReadUpTo);
    }

    /// <summary>Stores the visitor's message; returns once it is durable. Resending the same client message id returns
    /// the stored message (<see cref="SendAck.Duplicate"/>).</summary>
    public async Task<SendAck> Send(string conversationId, string clientMessageId, string text)
    {
        var visitor = Own(conversationId);
        if (string.IsNullOrEmpty(clientMessageId) || !ClientMessageIdPattern().IsMatch(clientMessageId))
            throw new HubException("invalid: clientMessageId must be 1-64 letters, digits, '-' or '_'.");
        text = (text ?? "").Trim();
        if (text.Length == 0)
            throw new HubException("invalid: The message is empty.");
        if (text.Length > options.Value.MaxMessageChars)
            throw new HubException($"invalid: The message is too long: at most {options.Value.MaxMessageChars} characters.");
        if (limits.TryAcquireMessage(visitor, AddressOf(Context.GetHttpContext())) is { } wait)
            throw new HubException($"rate-limited: You are sending messages too quickly. Please wait {Seconds(wait)} seconds and send again.");

        var sentAt = time.GetUtcNow();
        var message = new InboundMessage
        {
            ChannelAccountId = visitor.WidgetId,
            ThreadKey = visitor.SessionId,
            // Scoped to the session: two visitors who pick the same client id are two messages.
            ExternalMessageId = $"{visitor.SessionId}:{clientMessageId}",
            Sender = new SenderIdentity(IdentityKind.WebChat, visitor.IdentityValue),
            SentAt = sentAt,
            Text = text,
            RawSource = JsonSerializer.SerializeToUtf8Bytes(new { conversationId, clientMessageId, text, visitor = visitor.VisitorId }),
            RawContentType = "application/json",
        };
        IngestResult result;
        try
        {
            result = await handOff.HandOffAsync(message, Context.ConnectionAborted);
        }
        catch (DomainException ex)
        {
            throw new HubException(ex.Message);
        }
        if (!result.Duplicate)
        {
            // The visitor's other tabs (on any node) show it too; the sending tab matches it by its client id.
            try
            {
                await grains.GetGrain<IWebChatSessionGrain>(visitor.ConversationKey)
                    .PublishAsync(new VisitorEvent(VisitorEventKind.Message, new ChatLine(result.MessageId, "visitor", text, sentAt, clientMessageId)));
            }
            catch (Exception ex)
            {
                logger.LogDebug(ex, "Echo of {Message} to other tabs failed", result.MessageId);
            }
        }
        return new SendAck(result.MessageId, clientMessageId, result.Duplicate, sentAt);
    }

    /// <summary>The visitor types (<paramref name="draft"/>: the text so far, for article suggestions) or stopped.
    /// Ephemeral: nothing is stored. Returns up to three knowledge-base articles for the draft, or null when the signal
    /// or the search was over its budget and skipped (the widget keeps what it shows).</summary>
    public async Task<IReadOnlyList<ArticleSuggestion>?> Typing(string conversationId, bool typing, string? draft = null, string? language = null)
    {
        var visitor = Own(conversationId);
        if (limits.TryAcquireSignal(visitor) is not null)
            return null;
        await grains.GetGrain<IWebChatSessionGrain>(visitor.ConversationKey).VisitorActivityAsync(typing, null);
        draft = draft?.Trim();
        if (!typing || string.IsNullOrEmpty(draft) || draft.Length < 3)
            return [];
        if (draft.Length > 500)
            draft = draft[..500];
        // Searches have their own budget (per visitor and per address); a refused one is skipped, not an error.
        if (limits.TryAcquireSearch(visitor, AddressOf(Context.GetHttpContext())) is not null)
            return null;
        var found = await suggestions.SuggestAsync(draft, language is "zh" ? "zh" : "en", MaxSuggestions, Context.ConnectionAborted);
        return [.. found.Take(MaxSuggestions)];
    }

    /// <summary>The visitor has seen the agent's lines up to <paramref name="upTo"/> (a read receipt for agents).</summary>
    public async Task MarkRead(string conversationId, Guid upTo)
    {
        var visitor = Own(conversationId);
        if (limits.TryAcquireSignal(visitor) is not null)
            return;
        await grains.GetGrain<IWebChatSessionGrain>(visitor.ConversationKey).VisitorActivityAsync(null, upTo);
    }

    private Visitor Own(string conversationId)
    {
        var visitor = Context.Items.TryGetValue(VisitorItem, out var value) && value is Visitor v ? v : throw new HubException("Not connected as a visitor.");
        if (!string.Equals(conversationId, visitor.SessionId, StringComparison.Ordinal))
            throw new HubException("forbidden: This conversation is not yours; a visitor can only open their own conversation.");
        // The gate checked the widget and the origin when the connection opened (and checks every long poll); an admin
        // who turns the widget off or removes the site since ends what an open WebSocket may do, not only new ones.
        var origin = Context.GetHttpContext()?.Request.Headers.Origin.ToString();
        if (WebChatGate.WidgetOf(accounts, visitor.WidgetId) is not { } settings || !settings.AllowsOrigin(origin))
            throw new HubException("forbidden: The chat is no longer available on this site.");
        return visitor;
    }

    internal static ChatLine LineOf(Visitor visitor, TranscriptEntry entry)
    {
        var prefix = visitor.SessionId + ":";
        var clientId = entry.Direction == MessageDirection.Inbound && entry.ExternalId?.StartsWith(prefix, StringComparison.Ordinal) == true ? entry.ExternalId[prefix.Length..] : null;
        return new ChatLine(entry.Id, entry.Direction == MessageDirection.Inbound ? "visitor" : "agent", entry.Text, entry.CreatedAt, clientId, entry.AttachmentCount);
    }

    internal static string AddressOf(HttpContext? http) => ClientAddresses.Of(http);

    private static int Seconds(TimeSpan wait) => Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex ClientMessageIdPattern();
}
