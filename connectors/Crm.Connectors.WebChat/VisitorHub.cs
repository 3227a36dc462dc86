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

/// <summary>A code was mailed to <see cref="Email"/> (as normalized); the visitor proves the address with <see cref="VisitorHub.Verify"/>.</summary>
public sealed record VerificationStarted(string Email);

/// <summary>The visitor proved <see cref="Email"/>: the conversation now belongs to that address's customer.</summary>
public sealed record VerificationDone(string Email);

/// <summary>The transcript was mailed to the visitor's proven address.</summary>
public sealed record TranscriptSent(string Email, int Lines);

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
    WidgetMail mail,
    IGrainFactory grains,
    IOptions<WebChatOptions> options,
    TimeProvider time,
    ILogger<VisitorHub> logger) : Hub<IVisitorClient>
{
    internal const string Path = "/hubs/visitor";
    private const string VisitorItem = "crm.webchat.visitor";
    private const string AddressItem = "crm.webchat.address";
    private const string NameItem = "crm.webchat.name";
    internal const int MaxNameChars = 100;
    internal const int MaxSuggestions = 3;

    public override async Task OnConnectedAsync()
    {
        var http = Context.GetHttpContext() ?? throw new HubException("No HTTP context.");
        var widgetId = http.Request.Query["widget"].ToString();
        var visitor = tokens.Read(WebChatGate.TokenOf(http), widgetId);
        if (visitor is null || WebChatGate.WidgetOf(accounts, widgetId) is not { } settings || !settings.AllowsOrigin(http.Request.Headers.Origin))
            throw new HubException("This visitor token is not valid for this widget; start a new session.");
        await CheckStandingAsync(visitor);
        var address = AddressOf(http);
        if (connections.TryOpen(visitor, address) is { } refusal)
            throw new HubException(refusal);
        Context.Items[AddressItem] = address;
        Context.Items[VisitorItem] = visitor;
        await Groups.AddToGroupAsync(Context.ConnectionId, VisitorPushNode.Group(visitor.ConversationKey));
        await push.AttachAsync(visitor.ConversationKey, Context, visitor.Generation);
        await base.OnConnectedAsync();
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        if (Context.Items.TryGetValue(VisitorItem, out var value) && value is Visitor visitor)
        {
            connections.Close(visitor, (string)Context.Items[AddressItem]!);
            await push.DetachAsync(visitor.ConversationKey, Context.ConnectionId);
        }
        await base.OnDisconnectedAsync(exception);
    }

    /// <summary>The conversation so far (from the store), for a visitor who comes back or reconnects. Budgeted per
    /// visitor and per address: each read costs two store queries and up to a few megabytes of JSON.</summary>
    public async Task<ChatHistory> History(string conversationId)
    {
        var visitor = await OwnAsync(conversationId);
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
        var visitor = await OwnAsync(conversationId);
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
            Sender = new SenderIdentity(IdentityKind.WebChat, visitor.IdentityValue, Context.Items.TryGetValue(NameItem, out var name) ? name as string : null),
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
        var visitor = await OwnAsync(conversationId);
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
        var visitor = await OwnAsync(conversationId);
        if (limits.TryAcquireSignal(visitor) is not null)
            return;
        await grains.GetGrain<IWebChatSessionGrain>(visitor.ConversationKey).VisitorActivityAsync(null, upTo);
    }

    /// <summary>The name the visitor gave in the pre-chat or offline form: it goes with this connection's messages (the
    /// name a new customer gets; an agent may change it). Letters only as text: control and format characters (bidi
    /// overrides) are dropped, at most <see cref="MaxNameChars"/> characters.</summary>
    public async Task Introduce(string conversationId, string? name)
    {
        await OwnAsync(conversationId);
        var clean = CleanName(name);
        if (clean is null)
            Context.Items.Remove(NameItem);
        else
            Context.Items[NameItem] = clean;
    }

    internal static string? CleanName(string? name)
    {
        var kept = new string([.. (name ?? "").Where(c => !char.IsControl(c) && char.GetUnicodeCategory(c) != System.Globalization.UnicodeCategory.Format)]).Trim();
        if (kept.Length > MaxNameChars)
            kept = kept[..MaxNameChars].TrimEnd();
        // A cut surrogate pair at the end would be invalid text.
        if (kept.Length > 0 && char.IsHighSurrogate(kept[^1]))
            kept = kept[..^1];
        return kept.Length == 0 ? null : kept;
    }

    /// <summary>The visitor's standing, checked at connect and on every call: an agent or admin may have revoked the
    /// visitor's tokens or blocked the visitor meanwhile, and a renewal elsewhere ends this token after its grace.</summary>
    private async Task CheckStandingAsync(Visitor visitor)
    {
        var standing = await grains.GetGrain<IWebChatVisitorGrain>(visitor.VisitorKey).UseAsync(visitor.Generation);
        if (standing.Blocked)
            throw new HubException("blocked: " + WebChatEndpoints.BlockedMessage);
        if (!standing.Accepts(visitor.Generation))
            throw new HubException("expired: This chat session has ended or was renewed in another window; reconnecting.");
    }

    private async Task<Visitor> OwnAsync(string conversationId)
    {
        var visitor = Own(conversationId);
        await CheckStandingAsync(visitor);
        return visitor;
    }

    /// <summary>The pre-chat form's address (and name): mails a code to it through the widget's email channel. Typing an
    /// address proves nothing, so the conversation stays the visitor's own until <see cref="Verify"/>.</summary>
    public async Task<VerificationStarted> StartVerification(string conversationId, string? name, string email)
    {
        var visitor = await OwnAsync(conversationId);
        var settings = WebChatGate.WidgetOf(accounts, visitor.WidgetId)!;
        var address = WidgetMail.NormalizeEmail(email) ?? throw new HubException("invalid: Please enter an email address like name@example.com.");
        if (mail.AccountOf(settings) is not { } account)
            throw new HubException("unavailable: Email confirmation is not available on this chat.");
        name = CleanName(name);
        var issue = await grains.GetGrain<IWebChatVisitorGrain>(visitor.VisitorKey).IssueCodeAsync(address, name, AddressOf(Context.GetHttpContext()));
        if (issue.Code is not { } code)
        {
            var wait = Seconds(issue.RetryAfter ?? TimeSpan.FromMinutes(1));
            throw new HubException(issue.RefusedBy?.StartsWith("code-visitor:", StringComparison.Ordinal) == true
                ? $"rate-limited: You asked for several codes already. Please wait {wait} seconds and try again."
                : $"rate-limited: Too many codes were sent lately. Please wait {wait} seconds and try again.");
        }
        var minutes = (int)options.Value.VerificationCodeLifetime.TotalMinutes;
        var title = settings.Title.En ?? "our chat";
        var sent = await mail.SendAsync(account, address, $"Your code: {code}",
            $"Your code for {title} is {code}\n\nEnter it in the chat window within {minutes} minutes to confirm this address. If you did not ask for it, ignore this mail: nothing happens without the code.\n\n" +
            $"您在 {settings.Title.Zh ?? title} 的验证码是 {code}，请在 {minutes} 分钟内在聊天窗口中输入。如果不是您本人操作，请忽略此邮件。",
            Context.ConnectionAborted);
        if (!sent.Success)
            throw new HubException("unavailable: We could not send the code just now. Please try again in a few minutes.");
        return new VerificationStarted(address);
    }

    /// <summary>The code from the mail. Right: the visitor's identity joins the customer of that address (a fresh visitor's
    /// customer is merged into it), so agents see one customer. Wrong: a few tries per code, then a new code is needed.</summary>
    public async Task<VerificationDone> Verify(string conversationId, string code)
    {
        var visitor = await OwnAsync(conversationId);
        if (limits.TryAcquireCodeCheck(visitor, AddressOf(Context.GetHttpContext())) is { } wait)
            throw new HubException($"rate-limited: Too many tries. Please wait {Seconds(wait)} seconds.");
        code = (code ?? "").Trim();
        var check = code.Length is > 0 and <= 12
            ? await grains.GetGrain<IWebChatVisitorGrain>(visitor.VisitorKey).CheckCodeAsync(code, AddressOf(Context.GetHttpContext()))
            : new CodeCheck(CodeOutcome.Wrong, TriesLeft: 1);
        switch (check.Outcome)
        {
            case CodeOutcome.Wrong:
                throw new HubException($"wrong-code: That code is not right. {check.TriesLeft} more {(check.TriesLeft == 1 ? "try" : "tries")} for this code.");
            case CodeOutcome.NoCode:
                throw new HubException("wrong-code: This code is no longer valid. Ask for a new code.");
        }
        await VisitorCustomers.LinkAsync(grains, visitor, check.Email!, check.Name, logger);
        return new VerificationDone(check.Email!);
    }

    /// <summary>Mails the conversation so far to the visitor's proven address (never to an address only typed: that
    /// would let anyone mail a stranger). Budgeted per visitor.</summary>
    public async Task<TranscriptSent> SendTranscript(string conversationId)
    {
        var visitor = await OwnAsync(conversationId);
        var settings = WebChatGate.WidgetOf(accounts, visitor.WidgetId)!;
        if (mail.AccountOf(settings) is not { } account)
            throw new HubException("unavailable: Transcripts by email are not available on this chat.");
        var standing = await grains.GetGrain<IWebChatVisitorGrain>(visitor.VisitorKey).GetAsync();
        if (standing.VerifiedEmail is not { } email)
            throw new HubException("unverified: Confirm your email address first; the transcript goes only to a confirmed address.");
        if (limits.TryAcquireTranscript(visitor) is { } wait)
            throw new HubException($"rate-limited: A transcript was sent a moment ago. Please wait {Seconds(wait)} seconds.");
        var entries = await transcripts.ReadAsync(visitor.WidgetId, visitor.SessionId, options.Value.HistorySize, Context.ConnectionAborted);
        var sent = await mail.SendAsync(account, email, $"Your chat with {settings.Title.En ?? "us"}", Transcript(entries), Context.ConnectionAborted);
        if (!sent.Success)
            throw new HubException("unavailable: We could not send the transcript just now. Please try again in a few minutes.");
        return new TranscriptSent(email, entries.Count);
    }

    /// <summary>Plain text, one block per message, oldest first, times in UTC; agents are "Support", never named.</summary>
    internal static string Transcript(IReadOnlyList<TranscriptEntry> entries)
    {
        var text = new System.Text.StringBuilder("Your chat with us / 您的聊天记录\n\n");
        foreach (var entry in entries)
        {
            var who = entry.Direction == MessageDirection.Inbound ? "You" : "Support";
            text.Append('[').Append(entry.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture)).Append(" UTC] ")
                .Append(who).Append(":\n").Append(entry.Text ?? "").Append(entry.AttachmentCount > 0 ? $"\n({entry.AttachmentCount} file(s))" : "").Append("\n\n");
        }
        return text.ToString();
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
