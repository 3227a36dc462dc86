using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Telegram.Bot;
using Telegram.Bot.Exceptions;
using Telegram.Bot.Extensions;
using Telegram.Bot.Types;
using Telegram.Bot.Types.Enums;

namespace Crm.Connectors.Telegram;

/// <summary>What became of one update; every outcome lets the source be acknowledged (200, or the offset advanced).</summary>
internal abstract record UpdateOutcome
{
    /// <summary>Stored as a message (or it already was: <see cref="IngestResult.Duplicate"/>).</summary>
    public sealed record Stored(IngestResult Result) : UpdateOutcome;

    /// <summary>Not a customer message (another update kind, a service message, a group while groups are ignored,
    /// malformed, refused): kept raw with the reason (or, for a live location's moves, dropped).</summary>
    public sealed record Kept(string Reason) : UpdateOutcome;
}

/// <summary>
/// One update from a bot (webhook or getUpdates) to the core. A message is mapped (text with entities as HTML, media
/// fetched with getFile, locations, venues, contacts) and handed off with the update's raw JSON; anything that is not
/// a customer message is kept raw in the quarantine with the reason, so nothing is lost and nothing stops the reader.
/// Transient failures (the store, the Bot API unreachable while fetching a file) throw: the update is not acknowledged
/// and comes again, and the hand-off answers the repeat as a duplicate.
/// </summary>
/// <remarks>
/// Dedupe: a message's external id is "chat_id:message_id"; an edit is "chat_id:message_id:edit:{hash}", a message
/// of its own (the core has no edit concept: the earlier message stays as it was, so the history is kept), keyed by
/// what it shows (text, caption, files, place), so an edit that changes nothing visible again (a reaction) is a
/// duplicate and two edits within one second are both kept. An edit is marked automatic: it joins the ticket but
/// never reopens it or opens a follow-up. A live location's moves (edits with only a new position) are dropped. The
/// thread key is the chat id, so conversations are per (bot, chat), and the identity is the user id, global across
/// bots: one user who writes to two bots is two conversations and one customer.
/// Kept raw: in <see cref="QuarantineFolder"/> what an admin must see (malformed, refused, not handled after
/// <see cref="TelegramChannelOptions.MaxUpdateAttempts"/>, Business messages); in <see cref="IgnoredFolder"/> what is
/// not a customer message (ignored groups, service messages, other update kinds), deleted after
/// <see cref="TelegramChannelOptions.IgnoredRetention"/>; in <see cref="AnsweredFolder"/> a claim per automatic answer.
/// </remarks>
internal sealed class TelegramIngest(
    IInboundHandOff handOff,
    IConversationLookup lookup,
    IMailboxStateStore state,
    IGrainFactory grains,
    TelegramBots bots,
    IChannelHealth health,
    IOptions<TelegramChannelOptions> options,
    IConfiguration configuration,
    TimeProvider time,
    ILogger<TelegramIngest> logger)
{
    /// <summary>The quarantine "folder" of Telegram updates an admin must see (the quarantine's UID is the update_id).</summary>
    public const string QuarantineFolder = "telegram";

    /// <summary>Updates that are not customer messages, deleted after <see cref="TelegramChannelOptions.IgnoredRetention"/>.</summary>
    public const string IgnoredFolder = "telegram:ignored";

    /// <summary>Claims of automatic answers (/start, buttons): keyed by what they answer, inserted before the answer is
    /// sent, so of two deliveries of one update (a webhook retry, a redelivery under a new update_id) one answers.</summary>
    public const string AnsweredFolder = "telegram:answered";

    /// <summary>A row per file stored with a message (keyed by chat, message id and file_unique_id), so an edit of that
    /// message (a new caption) does not download the same file again; pruned like answer claims.</summary>
    public const string FilesFolder = "telegram:files";

    /// <summary>The cursor "folder" counting failed attempts: UidValidity = attempts, LastUid = the update_id.</summary>
    public const string AttemptsFolder = "telegram:attempts";

    private static readonly TimeSpan MinAnswerRetention = TimeSpan.FromDays(2);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _prunedAt = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _receivedAt = new(StringComparer.Ordinal);

    /// <summary>How often the last received update is written per bot (see <see cref="RecordReceivedAsync"/>).</summary>
    internal static readonly TimeSpan ReceivedInterval = TimeSpan.FromSeconds(30);

    /// <summary>
    /// <see cref="ProcessAsync"/> with a durable count of failed attempts per update: an update that fails
    /// <see cref="TelegramChannelOptions.MaxUpdateAttempts"/> times in a row (a download that always stalls, a hand-off
    /// that always throws) is kept raw with the last error and acknowledged, so it cannot hold up the bot's reader
    /// forever. A refusal that is about the channel itself (disabled, deleted) is not counted: it is not the update's fault.
    /// </summary>
    public async Task<UpdateOutcome> HandleAsync(ChannelAccount account, byte[] raw, CancellationToken cancellationToken = default)
    {
        UpdateOutcome outcome;
        try
        {
            outcome = await ProcessAsync(account, raw, cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && !(ex is DomainException domain && IsAboutTheChannel(domain)) && UpdateIdOf(raw) is >= 0)
        {
            var id = (uint)UpdateIdOf(raw)!.Value;
            var previous = await state.GetCursorAsync(account.Id, AttemptsFolder, CancellationToken.None);
            var attempts = previous is { } p && p.LastUid == id ? p.UidValidity + 1 : 1;
            var error = ex is HttpRequestException or TimeoutException or ApiRequestException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";
            if (attempts < options.Value.MaxUpdateAttempts)
            {
                await state.SaveCursorAsync(account.Id, AttemptsFolder, new MailboxCursor(attempts, id), CancellationToken.None);
                throw;
            }
            logger.LogWarning("Telegram update {UpdateId} of channel {Channel} failed {Attempts} times; kept raw and acknowledged: {Error}", id, account.Id, attempts, error);
            await health.ReportErrorAsync(account.Id, $"Update {id} could not be handled in {attempts} attempts and was kept raw: {error}", CancellationToken.None);
            return await KeepAsync(account, (int)id, $"Not handled in {attempts} attempts (kept so the bot's later updates go on); last error: {error}", raw, cancellationToken);
        }
        // Outside the try: the update is stored, so a failed health write must not count it as a failed attempt (review CT4).
        await RecordReceivedAsync(account, raw, cancellationToken);
        return outcome;
    }

    /// <summary>The bot's last received update for the admin API's health (<see cref="ChannelActivity.ReceivedFolder"/>):
    /// recorded after the update was handled, at most every <see cref="ReceivedInterval"/> per bot on this node, so a
    /// busy bot costs no extra write per update. The slot is claimed before the write (compare-and-set), so updates
    /// handled at the same moment make one write, not one each (review IN3).</summary>
    private async Task RecordReceivedAsync(ChannelAccount account, byte[] raw, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (!TryClaimReceivedSlot(account.Id, now))
            return;
        var updateId = UpdateIdOf(raw) is { } id and >= 0 ? (uint)id : 0u;
        try
        {
            await state.SaveCursorAsync(account.Id, ChannelActivity.ReceivedFolder, new MailboxCursor((uint)Math.Max(0, now.ToUnixTimeSeconds()), updateId), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Best effort: it is only the admin view's "last received"; the update itself is stored. The next try comes
            // after ReceivedRetryDelay, not half a minute later, and not with every update while the store is busy.
            _receivedAt[account.Id] = now - ReceivedInterval + options.Value.ReceivedRetryDelay;
            logger.LogWarning(ex, "Telegram channel {Channel}: the last received update could not be recorded", account.Id);
        }
    }

    private bool TryClaimReceivedSlot(string accountId, DateTimeOffset now)
    {
        while (true)
        {
            if (!_receivedAt.TryGetValue(accountId, out var last))
            {
                if (_receivedAt.TryAdd(accountId, now))
                    return true;
            }
            else if (now - last < ReceivedInterval)
            {
                return false;
            }
            else if (_receivedAt.TryUpdate(accountId, now, last))
            {
                return true;
            }
        }
    }

    /// <summary>Whether a refusal is about the channel (disabled or deleted while the update was on its way) rather than
    /// about the message: then the update is not acknowledged, and it is handed off once the channel is back.</summary>
    internal static bool IsAboutTheChannel(DomainException ex) =>
        ex.Field == "channelId" && ex.Kind is DomainErrorKind.NotFound or DomainErrorKind.Forbidden;

    public async Task<UpdateOutcome> ProcessAsync(ChannelAccount account, byte[] raw, CancellationToken cancellationToken = default)
    {
        var settings = account.SettingsAs<TelegramChannelSettings>() ?? throw new InvalidOperationException($"Channel '{account.Id}' has no Telegram settings.");
        var updateId = UpdateIdOf(raw);
        Update? update;
        try
        {
            update = JsonSerializer.Deserialize<Update>(raw, JsonBotAPI.Options);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException or ArgumentException or FormatException)
        {
            return await KeepAsync(account, updateId, $"Not a Telegram update the Bot API library can read: {FirstLine(ex.Message)}", raw, cancellationToken);
        }
        if (update is null || updateId is null)
            return await KeepAsync(account, updateId, "Not a Telegram update: a JSON object with an integer update_id is expected.", raw, cancellationToken);

        switch (update.Type)
        {
            case UpdateType.Message or UpdateType.ChannelPost:
                return await MessageAsync(account, settings, update.Message ?? update.ChannelPost!, edited: false, updateId.Value, raw, cancellationToken);
            case UpdateType.EditedMessage or UpdateType.EditedChannelPost:
                return await MessageAsync(account, settings, update.EditedMessage ?? update.EditedChannelPost!, edited: true, updateId.Value, raw, cancellationToken);
            case UpdateType.BusinessMessage or UpdateType.EditedBusinessMessage:
                // A business chat has the client's user id as its chat id, the same as the client's own chat with the
                // bot, and carries the business owner's messages too: handed off, it would mix two people in one thread.
                return await KeepAsync(account, updateId, "Telegram Business messages are not supported yet; kept raw, not handed off.", raw, cancellationToken);
            case UpdateType.CallbackQuery:
                return await CallbackAsync(account, settings, update.CallbackQuery!, updateId.Value, raw, cancellationToken);
            default:
                return await IgnoreAsync(account, updateId, $"Update of kind '{KindOf(raw)}' is not a customer message.", raw, cancellationToken);
        }
    }

    private async Task<UpdateOutcome> MessageAsync(ChannelAccount account, TelegramChannelSettings settings, Message message, bool edited, int updateId, byte[] raw, CancellationToken cancellationToken)
    {
        if (message.Chat is null)
            return await KeepAsync(account, updateId, "The message has no chat.", raw, cancellationToken);
        var chat = message.Chat;
        var isPrivate = chat.Type == ChatType.Private;
        if (!isPrivate && settings.Groups == TelegramGroupHandling.Ignore)
            return await IgnoreAsync(account, updateId, $"Message in {chat.Type.ToString().ToLowerInvariant()} chat {chat.Id} ignored: settings.groups is \"ignore\".", raw, cancellationToken);
        if (message.IsServiceMessage)
            return await IgnoreAsync(account, updateId, $"Service message ({message.Type}) in chat {chat.Id}; not a customer message.", raw, cancellationToken);
        if (edited && message.Location is { LivePeriod: not null } && message.Text is null && message.Caption is null)
        {
            // A live location reports every move as an edit (hundreds an hour); the message that shared it is stored.
            logger.LogDebug("Telegram channel {Channel}: live location update of message {Chat}:{Message} dropped", account.Id, chat.Id, message.MessageId);
            return new UpdateOutcome.Kept("A live location's new position; the message that shared it is stored.");
        }

        SenderIdentity sender;
        if (isPrivate)
        {
            if (message.From is not { } from)
                return await KeepAsync(account, updateId, $"Message {message.MessageId} in private chat {chat.Id} names no sender.", raw, cancellationToken);
            if (from.IsBot)
                return await IgnoreAsync(account, updateId, $"Message {message.MessageId} in chat {chat.Id} is from a bot ({from.Id}).", raw, cancellationToken);
            sender = new SenderIdentity(IdentityKind.Telegram, from.Id.ToString(CultureInfo.InvariantCulture), NameOf(from));
        }
        else
        {
            // A thread belongs to one sender in the core, so a group is one customer; each message names its author.
            sender = new SenderIdentity(IdentityKind.Telegram, chat.Id.ToString(CultureInfo.InvariantCulture), Clean(chat.Title) ?? $"Telegram chat {chat.Id}");
        }

        if (isPrivate && !edited && IsStart(message.Text))
            return await StartAsync(account, settings, message, updateId, raw, cancellationToken);

        var chatId = chat.Id.ToString(CultureInfo.InvariantCulture);
        var originalId = $"{chatId}:{message.MessageId.ToString(CultureInfo.InvariantCulture)}";
        var externalId = edited ? $"{originalId}:edit:{VisibleHash(message)}" : originalId;
        // A redelivery (a webhook retry, a restart before the offset was confirmed) is not downloaded again only to be
        // answered as a duplicate: the hand-off still answers it, without the files.
        var stored = await lookup.FindByMessagesAsync(account.Id, [externalId], [], cancellationToken) is not null;
        var content = await ContentAsync(account, settings, message, fetchFiles: !stored, cancellationToken);
        var prefix = new List<string>();
        if (edited)
            prefix.Add($"✏️ Edit of message {originalId}:");
        if (!isPrivate)
            prefix.Add($"{(message.From is { } author ? NameOf(author) : Clean(message.AuthorSignature) ?? Clean(message.SenderChat?.Title) ?? "unknown")}:");
        if (message.ForwardOrigin is not null)
            prefix.Add("(forwarded message)");
        var inbound = new InboundMessage
        {
            ChannelAccountId = account.Id,
            ThreadKey = chatId,
            ExternalMessageId = externalId,
            Sender = sender,
            SentAt = new DateTimeOffset(DateTime.SpecifyKind(edited ? message.EditDate ?? message.Date : message.Date, DateTimeKind.Utc)),
            Text = string.Join("\n", prefix.Concat(content.Lines)),
            Html = content.Html is null ? null : string.Join("<br>\n", prefix.Select(HtmlText.Escape).Append(content.Html.Replace("\n", "<br>\n", StringComparison.Ordinal))),
            Attachments = content.Attachments,
            RawSource = raw,
            RawContentType = "application/json",
            // The core has no edit: an edit joins the ticket for the record but never reopens it or opens a follow-up.
            AutomaticReason = edited ? "An edit of an earlier Telegram message" : null,
        };
        IngestResult result;
        try
        {
            result = await handOff.HandOffAsync(inbound, cancellationToken);
        }
        catch (DomainException ex) when (!IsAboutTheChannel(ex))
        {
            // A refusal of this message (docs/connectors.md): kept for admins and acknowledged, never retried forever.
            logger.LogWarning("Telegram message {MessageId} on channel {Channel} refused: {Reason}", inbound.ExternalMessageId, account.Id, ex.Message);
            return await KeepAsync(account, updateId, $"Refused by the core: {ex.Message}", raw, cancellationToken);
        }
        // After the hand-off stored the files: an edit that shows them again finds them here.
        foreach (var uniqueId in content.FileUniqueIds)
            await state.QuarantineAsync(new QuarantinedMail(account.Id, FilesFolder, 0, updateId > 0 ? (uint)updateId : 0,
                $"File {uniqueId} stored with message {originalId}.", FileKey(message, uniqueId), time.GetUtcNow()), cancellationToken);
        if (isPrivate && message.Contact is { } contact && contact.UserId is { } owner && owner == message.From!.Id)
            await LinkPhoneAsync(account, contact.PhoneNumber, result.CustomerId, cancellationToken);
        return new UpdateOutcome.Stored(result);
    }

    /// <summary>
    /// A contact the user shared of themselves (its user_id is the sender's: Telegram vouches for the number) joins the
    /// phone identity to the sender's customer. Only a number no customer holds yet is linked: moving a number away from
    /// another customer is a merge an agent decides. Anyone's contact card (user_id missing or another user) links nothing.
    /// </summary>
    private async Task LinkPhoneAsync(ChannelAccount account, string? phone, Guid customerId, CancellationToken cancellationToken)
    {
        string key;
        try
        {
            // Telegram clients send the user's own number with or without '+'; it is always international.
            var international = phone?.Trim() is { Length: > 0 } given && !given.StartsWith('+') ? "+" + given : phone;
            key = GrainKeys.Identity(IdentityKind.Phone, international ?? "", account.Id);
        }
        catch (FormatException)
        {
            return;
        }
        // Decided inside the identity grain: two first contacts sharing one number at once link it once, never move it.
        var holder = await grains.GetGrain<IIdentityGrain>(key).LinkIfFreeAsync(customerId, $"telegram:{account.Id}", cancellationToken);
        if (holder != customerId)
            logger.LogInformation("Telegram channel {Channel}: shared phone {Phone} already belongs to customer {Holder}; not moved to {Customer}", account.Id, key, holder, customerId);
    }

    /// <summary>
    /// /start opens the chat with the bot: answered with the welcome text; it opens no ticket. The answer is claimed
    /// before it is sent (a row keyed by chat and message id; the store's unique index picks one winner), so a
    /// concurrent webhook retry or the same message under a new update_id is not welcomed again; and one chat is
    /// welcomed at most once per <see cref="TelegramChannelOptions.WelcomeInterval"/>, however often it sends /start.
    /// A crash between the claim and the send leaves that /start unanswered (at most once).
    /// </summary>
    private async Task<UpdateOutcome> StartAsync(ChannelAccount account, TelegramChannelSettings settings, Message message, int updateId, byte[] raw, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(settings.WelcomeText))
            return await IgnoreAsync(account, updateId, "/start: no welcome text is configured; nothing to answer.", raw, cancellationToken);
        var chat = message.Chat.Id.ToString(CultureInfo.InvariantCulture);
        var who = $"/start from user {message.From?.Id} (message {chat}:{message.MessageId})";
        if (!await ClaimAsync(account, updateId, $"start:{chat}:{message.MessageId}", $"{who}: answering with the welcome text.", cancellationToken))
            return new UpdateOutcome.Kept($"{who}: a redelivery of a message already answered.");
        var interval = options.Value.WelcomeInterval;
        if (interval > TimeSpan.Zero)
        {
            var period = time.GetUtcNow().UtcTicks / interval.Ticks;
            if (!await ClaimAsync(account, updateId, $"welcome:{chat}:{interval.Ticks}:{period}", $"Welcome text sent to chat {chat} in this period.", cancellationToken))
                return new UpdateOutcome.Kept($"{who}: this chat was welcomed a short while ago.");
        }
        try
        {
            await Bot(settings).SendMessage(message.Chat.Id, HtmlText.Escape(settings.WelcomeText), ParseMode.Html, cancellationToken: cancellationToken);
        }
        catch (ApiRequestException ex)
        {
            // The user may have blocked the bot right away; the update is still handled.
            await health.ReportErrorAsync(account.Id, $"sendMessage (welcome): {ex.ErrorCode} {ex.Message}", cancellationToken);
            return new UpdateOutcome.Kept($"{who}: the welcome text could not be sent: {ex.ErrorCode} {ex.Message}.");
        }
        return new UpdateOutcome.Kept($"{who}: answered with the welcome text.");
    }

    /// <summary>
    /// Our inline buttons (CSAT, later) send callback queries; Telegram shows a spinner until it is answered. A press
    /// on a button of a message in a chat we hold as a conversation is first recorded on that conversation as the
    /// customer's action (a message of its own, "chat_id:callback:query_id", marked automatic: it never reopens the
    /// ticket), so a redelivery is a duplicate; then the answer is claimed by the query's id and sent, like /start.
    /// A press without a message (an inline-mode message) or in an ignored group is only answered.
    /// </summary>
    private async Task<UpdateOutcome> CallbackAsync(ChannelAccount account, TelegramChannelSettings settings, CallbackQuery query, int updateId, byte[] raw, CancellationToken cancellationToken)
    {
        var what = $"Callback query {OneLine(query.Id, 64)} from user {query.From?.Id} with data '{OneLine(query.Data, 64)}'";
        IngestResult? recorded = null;
        if (query.Message is { Chat: { } chat } message && query.From is { IsBot: false } from
            && (chat.Type == ChatType.Private || settings.Groups != TelegramGroupHandling.Ignore)
            // Only in a chat we hold as a conversation (our buttons are on our replies there): callback data is
            // client-made, and a press elsewhere would open a ticket of "pressed a button" (review CT5).
            && (await lookup.HistoryAsync(account.Id, chat.Id.ToString(CultureInfo.InvariantCulture), 1, cancellationToken)).Messages.Count > 0)
        {
            var chatId = chat.Id.ToString(CultureInfo.InvariantCulture);
            var on = $"{chatId}:{message.MessageId.ToString(CultureInfo.InvariantCulture)}";
            // The button's own label, as the customer saw it; the data when the message's keyboard is not included.
            var label = message.ReplyMarkup?.InlineKeyboard.SelectMany(row => row)
                .FirstOrDefault(b => b.CallbackData is not null && b.CallbackData == query.Data)?.Text;
            // Data and label are the client's words: one line, no bidi or format characters, cut by rune (review CT6).
            var text = label is null
                ? $"🔘 Pressed a button (data '{OneLine(query.Data, 64)}') on message {on}."
                : $"🔘 Pressed the button \"{OneLine(label, 200)}\" (data '{OneLine(query.Data, 64)}') on message {on}.";
            var sender = chat.Type == ChatType.Private
                ? new SenderIdentity(IdentityKind.Telegram, from.Id.ToString(CultureInfo.InvariantCulture), NameOf(from))
                : new SenderIdentity(IdentityKind.Telegram, chatId, Clean(chat.Title) ?? $"Telegram chat {chat.Id}");
            try
            {
                recorded = await handOff.HandOffAsync(new InboundMessage
                {
                    ChannelAccountId = account.Id,
                    ThreadKey = chatId,
                    ExternalMessageId = $"{chatId}:callback:{query.Id}",
                    Sender = sender,
                    SentAt = time.GetUtcNow(),
                    Text = chat.Type == ChatType.Private ? text : $"{NameOf(from)}:\n{text}",
                    RawSource = raw,
                    RawContentType = "application/json",
                    AutomaticReason = "A button pressed on a Telegram message",
                }, cancellationToken);
            }
            catch (DomainException ex) when (!IsAboutTheChannel(ex))
            {
                logger.LogWarning("Telegram callback query {Query} on channel {Channel} refused: {Reason}", query.Id, account.Id, ex.Message);
                await KeepAsync(account, updateId, $"{what}: refused by the core: {ex.Message}", raw, cancellationToken);
            }
        }
        var outcome = (UpdateOutcome?)(recorded is null ? null : new UpdateOutcome.Stored(recorded));
        var bound = recorded is null ? "no action is bound to it yet" : "recorded on the conversation";
        if (!await ClaimAsync(account, updateId, $"callback:{query.Id}", $"{what} answered; {bound}.", cancellationToken))
            return outcome ?? new UpdateOutcome.Kept($"{what}: a redelivery of a query already answered.");
        try
        {
            await Bot(settings).AnswerCallbackQuery(query.Id, cancellationToken: cancellationToken);
        }
        catch (ApiRequestException ex)
        {
            // "query is too old": a redelivery long after the fact; nothing to answer any more.
            return outcome ?? new UpdateOutcome.Kept($"{what} not answered ({ex.ErrorCode} {ex.Message}).");
        }
        return outcome ?? new UpdateOutcome.Kept($"{what} answered; {bound}.");
    }

    /// <summary>Inserts the claim row of an automatic answer; true when this call inserted it (and so must answer).</summary>
    private async Task<bool> ClaimAsync(ChannelAccount account, int updateId, string key, string reason, CancellationToken cancellationToken)
    {
        var claimed = await state.QuarantineAsync(new QuarantinedMail(account.Id, AnsweredFolder, 0, updateId > 0 ? (uint)updateId : 0, reason,
            Encoding.UTF8.GetBytes($"telegram-answer:{key}"), time.GetUtcNow()), cancellationToken);
        await PruneIfDueAsync(account, cancellationToken);
        return claimed;
    }

    private sealed record Content(List<string> Lines, string? Html, List<InboundAttachment> Attachments, List<string> FileUniqueIds);

    private static byte[] FileKey(Message message, string fileUniqueId) =>
        Encoding.UTF8.GetBytes($"telegram-file:{message.Chat.Id.ToString(CultureInfo.InvariantCulture)}:{message.MessageId.ToString(CultureInfo.InvariantCulture)}:{fileUniqueId}");

    private async Task<Content> ContentAsync(ChannelAccount account, TelegramChannelSettings settings, Message message, bool fetchFiles, CancellationToken cancellationToken)
    {
        var lines = new List<string>();
        var attachments = new List<InboundAttachment>();
        var body = message.Text ?? message.Caption;
        var entities = message.Text is not null ? message.Entities : message.CaptionEntities;
        string? html = null;
        if (body is not null && entities is { Length: > 0 })
        {
            try
            {
                html = HtmlText.ToHtml(body, entities);
            }
            catch (Exception ex) when (ex is ArgumentException or IndexOutOfRangeException)
            {
                // Entities pointing past the text (a forged or truncated update): the text is kept without them.
                html = null;
            }
        }
        var id = message.MessageId.ToString(CultureInfo.InvariantCulture);
        var files = new List<(FileBase File, string Name, string ContentType, string Label)>();
        if (message.Photo is { Length: > 0 } sizes)
            files.Add((sizes.OrderBy(p => (long)p.Width * p.Height).ThenBy(p => p.FileSize ?? 0).Last(), $"photo-{id}.jpg", "image/jpeg", "photo"));
        if (message.Animation is { } animation)
            files.Add((animation, FileName(animation.FileName, $"animation-{id}.mp4"), animation.MimeType ?? "video/mp4", "animation"));
        else if (message.Document is { } document)
            files.Add((document, FileName(document.FileName, $"document-{id}"), document.MimeType ?? "application/octet-stream", "document"));
        if (message.Audio is { } audio)
            files.Add((audio, FileName(audio.FileName, $"audio-{id}.mp3"), audio.MimeType ?? "audio/mpeg", "audio"));
        if (message.Voice is { } voice)
            files.Add((voice, $"voice-{id}.ogg", voice.MimeType ?? "audio/ogg", "voice message"));
        if (message.Video is { } video)
            files.Add((video, FileName(video.FileName, $"video-{id}.mp4"), video.MimeType ?? "video/mp4", "video"));
        if (message.VideoNote is { } note)
            files.Add((note, $"video-note-{id}.mp4", "video/mp4", "video message"));
        if (message.Sticker is { } sticker)
        {
            lines.Add($"[Sticker {sticker.Emoji}]".Replace(" ]", "]", StringComparison.Ordinal));
            var (extension, type) = sticker.IsAnimated ? (".tgs", "application/x-tgsticker") : sticker.IsVideo ? (".webm", "video/webm") : (".webp", "image/webp");
            files.Add((sticker, $"sticker-{id}{extension}", type, "sticker"));
        }
        if (body is not null)
            lines.Add(body);
        if (message.Venue is { } venue)
            lines.Add($"📍 {venue.Title}, {venue.Address} ({Coordinates(venue.Location)}) {MapLink(venue.Location)}");
        else if (message.Location is { } location)
            lines.Add($"📍 Location: {Coordinates(location)} {MapLink(location)}");
        if (message.Contact is { } contact)
            lines.Add($"📇 Contact: {string.Join(' ', new[] { contact.FirstName, contact.LastName }.Where(n => !string.IsNullOrWhiteSpace(n)))}, {contact.PhoneNumber}"
                      + (contact.UserId is { } user && user == message.From?.Id ? " (the sender's own number)" : ""));
        var fetched = new List<string>();
        foreach (var (file, name, type, label) in fetchFiles ? files : [])
        {
            // An edit (a new caption) shows the same file: it is on the message already and is not downloaded again.
            if (message.EditDate is not null && !string.IsNullOrEmpty(file.FileUniqueId)
                && await state.IsQuarantinedAsync(account.Id, FileKey(message, file.FileUniqueId), cancellationToken))
            {
                lines.Add($"[The {label} '{name}' is unchanged; it is on the earlier version of the message.]");
                continue;
            }
            var (attachment, problem) = await FetchAsync(account, settings, file, name, type, label, cancellationToken);
            if (attachment is not null)
            {
                attachments.Add(attachment);
                if (!string.IsNullOrEmpty(file.FileUniqueId))
                    fetched.Add(file.FileUniqueId);
            }
            if (problem is not null)
                lines.Add(problem);
        }
        if (lines.Count == 0 && attachments.Count == 0)
            lines.Add($"[A Telegram message of kind '{message.Type}' that is not shown here; its raw update is kept.]");
        if (html is not null && lines.Count > 1)
        {
            // Notes about files, locations and contacts go next to the formatted text.
            html = string.Join("\n", lines.Where(l => !ReferenceEquals(l, body)).Select(HtmlText.Escape).Prepend(html));
        }
        return new Content(lines, html, attachments, fetched);
    }

    /// <summary>getFile and download; a file over the limit, or one Telegram refuses, becomes a note for the agent. The
    /// limit is the smaller of the Bot API's (MaxFileBytes) and the core's (Ingest:MaxAttachmentBytes): a file the core
    /// would refuse would otherwise take the whole message, text and all, into the quarantine.</summary>
    private async Task<(InboundAttachment? Attachment, string? Problem)> FetchAsync(ChannelAccount account, TelegramChannelSettings settings, FileBase file, string name, string contentType, string label, CancellationToken cancellationToken)
    {
        var telegramLimit = options.Value.MaxFileBytes;
        var coreLimit = configuration.GetValue<long?>("Ingest:MaxAttachmentBytes") ?? long.MaxValue;
        var limit = Math.Min(telegramLimit, coreLimit);
        if (file.FileSize > limit)
            return (null, TooLarge(label, name, file.FileSize.Value, limit, limit < telegramLimit));
        if (settings.Token is null)
            return (null, $"[The {label} '{name}' could not be fetched: the bot has no token.]");
        var bot = Bot(settings);
        try
        {
            var info = await bot.GetFile(file.FileId, cancellationToken);
            if (info.FileSize > limit)
                return (null, TooLarge(label, name, info.FileSize.Value, limit, limit < telegramLimit));
            if (string.IsNullOrEmpty(info.FilePath))
                return (null, $"[The {label} '{name}' could not be fetched: Telegram gave no file path.]");
            // Sized from the declared size, so the buffer does not grow by doubling (and is handed on without a copy).
            var declared = info.FileSize ?? file.FileSize ?? 0;
            using var buffer = new CappedStream(limit, (int)Math.Clamp(declared, 0, Math.Min(limit, Array.MaxLength)));
            var timeout = options.Value.RequestTimeout + TimeSpan.FromSeconds(Math.Max(declared, 0) / (double)options.Value.MinDownloadBytesPerSecond);
            await bots.DownloadAsync(settings.Token, info.FilePath, buffer, timeout, cancellationToken);
            var content = buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
            return (new InboundAttachment(name, contentType, content), null);
        }
        catch (CappedStream.LimitExceededException)
        {
            return (null, TooLarge(label, name, limit + 1, limit, limit < telegramLimit));
        }
        catch (ApiRequestException ex) when (ex.ErrorCode is 400 or 404)
        {
            // "file is too big", "wrong file_id": asking again would get the same answer.
            logger.LogInformation("Telegram channel {Channel}: {Label} {FileId} not fetched: {Error}", account.Id, label, file.FileId, ex.Message);
            return (null, ex.Message.Contains("too big", StringComparison.OrdinalIgnoreCase)
                ? TooLarge(label, name, file.FileSize ?? telegramLimit + 1, telegramLimit, false)
                : $"[The {label} '{name}' could not be fetched from Telegram: {ex.Message}]");
        }
        catch (ApiRequestException ex)
        {
            // 401, 429, 5xx: the update is not acknowledged and comes again (counted: see HandleAsync).
            throw new HttpRequestException($"getFile: {ex.ErrorCode} {ex.Message}", ex, ex.ErrorCode is > 0 ? (HttpStatusCode)ex.ErrorCode : null);
        }
    }

    private static string TooLarge(string label, string name, long size, long limit, bool ours) => ours
        ? $"[The {label} '{name}' ({size / (1024.0 * 1024):0.#} MB) is larger than the {limit / (1024.0 * 1024):0.#} MB this helpdesk accepts per file; ask the customer to send it another way.]"
        : $"[The {label} '{name}' ({size / (1024.0 * 1024):0.#} MB) is larger than the {limit / (1024.0 * 1024):0.#} MB bots may download from Telegram; ask the customer to send it another way.]";

    /// <summary>Kept for admins (never deleted by the connector).</summary>
    private async Task<UpdateOutcome> KeepAsync(ChannelAccount account, int? updateId, string reason, byte[] raw, CancellationToken cancellationToken)
    {
        logger.LogInformation("Telegram update {UpdateId} of channel {Channel} kept raw: {Reason}", updateId, account.Id, reason);
        await state.QuarantineAsync(new QuarantinedMail(account.Id, QuarantineFolder, 0, updateId is > 0 ? (uint)updateId.Value : 0, reason, raw, time.GetUtcNow()), cancellationToken);
        return new UpdateOutcome.Kept(reason);
    }

    /// <summary>Not a customer message: kept raw for <see cref="TelegramChannelOptions.IgnoredRetention"/>, then deleted.</summary>
    private async Task<UpdateOutcome> IgnoreAsync(ChannelAccount account, int? updateId, string reason, byte[] raw, CancellationToken cancellationToken)
    {
        logger.LogDebug("Telegram update {UpdateId} of channel {Channel} ignored: {Reason}", updateId, account.Id, reason);
        await state.QuarantineAsync(new QuarantinedMail(account.Id, IgnoredFolder, 0, updateId is > 0 ? (uint)updateId.Value : 0, reason, raw, time.GetUtcNow()), cancellationToken);
        await PruneIfDueAsync(account, cancellationToken);
        return new UpdateOutcome.Kept(reason);
    }

    /// <summary>Deletes ignored updates and answer claims past their retention; at most every retention period (and at
    /// least hourly) per account, so a flood of ignored updates costs one delete per period.</summary>
    internal async Task PruneIfDueAsync(ChannelAccount account, CancellationToken cancellationToken)
    {
        var retention = options.Value.IgnoredRetention;
        var now = time.GetUtcNow();
        var every = retention < TimeSpan.FromHours(1) ? retention : TimeSpan.FromHours(1);
        if (_prunedAt.TryGetValue(account.Id, out var last) && now - last < every)
            return;
        _prunedAt[account.Id] = now;
        var ignored = await state.PruneQuarantineAsync(account.Id, IgnoredFolder, now - retention, cancellationToken);
        var answers = await state.PruneQuarantineAsync(account.Id, AnsweredFolder, now - (retention > MinAnswerRetention ? retention : MinAnswerRetention), cancellationToken)
            + await state.PruneQuarantineAsync(account.Id, FilesFolder, now - (retention > MinAnswerRetention ? retention : MinAnswerRetention), cancellationToken);
        if (ignored + answers > 0)
            logger.LogInformation("Telegram channel {Channel}: {Ignored} ignored updates and {Answers} answer claims past their retention deleted", account.Id, ignored, answers);
    }

    /// <summary>A short hash of what a message shows (text, caption, files by file_unique_id, place, contact): the key
    /// of an edit, so an edit that shows nothing new is a duplicate of the last one that did.</summary>
    internal static string VisibleHash(Message message)
    {
        var parts = new List<string?> { message.Text, message.Caption };
        parts.AddRange(new FileBase?[] { message.Photo?.OrderBy(p => (long)p.Width * p.Height).LastOrDefault(), message.Animation, message.Document, message.Audio, message.Voice, message.Video, message.VideoNote, message.Sticker }
            .Select(f => f?.FileUniqueId));
        parts.Add(message.Venue is { } venue ? $"{venue.Title}|{venue.Address}" : null);
        parts.Add(message.Location is { } location ? Coordinates(location) : null);
        parts.Add(message.Contact is { } contact ? $"{contact.PhoneNumber}|{contact.UserId}" : null);
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\u0001', parts.Select(p => p ?? ""))));
        return Convert.ToHexStringLower(bytes.AsSpan(0, 8));
    }

    private TelegramBotClient Bot(TelegramChannelSettings settings) => bots.For(settings.Token ?? throw new InvalidOperationException("The bot has no token."));

    /// <summary>The update_id of a raw update, or null when there is none (not JSON, not an object, not an int).</summary>
    internal static int? UpdateIdOf(ReadOnlySpan<byte> raw)
    {
        try
        {
            var reader = new Utf8JsonReader(raw);
            using var document = JsonDocument.ParseValue(ref reader);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("update_id", out var id) && id.TryGetInt32(out var value)
                ? value : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The update's kind as Telegram names it: its one member besides update_id.</summary>
    private static string KindOf(byte[] raw)
    {
        try
        {
            using var document = JsonDocument.Parse(raw);
            return document.RootElement.EnumerateObject().Select(p => p.Name).FirstOrDefault(n => n != "update_id") is { } kind ? Truncate(kind, 64)! : "empty";
        }
        catch (JsonException)
        {
            return "unreadable";
        }
    }

    internal static bool IsStart(string? text) =>
        text is not null && (text == "/start" || text.StartsWith("/start ", StringComparison.Ordinal) || text.StartsWith("/start@", StringComparison.Ordinal));

    private static string NameOf(User user)
    {
        var name = string.Join(' ', new[] { user.FirstName, user.LastName }.Where(n => !string.IsNullOrWhiteSpace(n))).Trim();
        if (!string.IsNullOrEmpty(user.Username))
            name = name.Length == 0 ? "@" + user.Username : $"{name} (@{user.Username})";
        return Clean(name) ?? $"Telegram user {user.Id}";
    }

    private static string? Clean(string? value) => string.IsNullOrWhiteSpace(value) ? null : Truncate(value.Trim(), 200);

    private static string FileName(string? given, string fallback) =>
        string.IsNullOrWhiteSpace(given) ? fallback : given.Trim();

    private static string Coordinates(Location location) =>
        string.Create(CultureInfo.InvariantCulture, $"{location.Latitude:0.######}, {location.Longitude:0.######}");

    private static string MapLink(Location location) =>
        string.Create(CultureInfo.InvariantCulture, $"https://www.openstreetmap.org/?mlat={location.Latitude:0.######}&mlon={location.Longitude:0.######}#map=17/{location.Latitude:0.######}/{location.Longitude:0.######}");

    private static string? Truncate(string? value, int max) => value is null ? null : value.Length <= max ? value : value[..max];

    /// <summary>A client-made string shown inside one of our lines: control, format (bidi) and line/paragraph separator
    /// characters become a space, and it is cut at <paramref name="max"/> runes (never inside a surrogate pair).</summary>
    internal static string OneLine(string? value, int max)
    {
        if (value is null)
            return "";
        var builder = new StringBuilder(Math.Min(value.Length, max * 2));
        var runes = 0;
        foreach (var rune in value.EnumerateRunes())
        {
            if (runes++ == max)
                break;
            var category = Rune.GetUnicodeCategory(rune);
            builder.Append(Rune.IsControl(rune) || category is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                ? " " : rune.ToString());
        }
        return builder.ToString();
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Split(". ", 2)[0];
}

/// <summary>A memory stream that refuses to grow past a limit: a file server lying about a size cannot make us buffer more.</summary>
internal sealed class CappedStream(long limit, int capacity = 0) : MemoryStream(capacity)
{
    public sealed class LimitExceededException() : IOException("The file is larger than the limit.");

    public override void Write(byte[] buffer, int offset, int count)
    {
        Check(count);
        base.Write(buffer, offset, count);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Check(buffer.Length);
        base.Write(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Check(count);
        return base.WriteAsync(buffer, offset, count, cancellationToken);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Check(buffer.Length);
        return base.WriteAsync(buffer, cancellationToken);
    }

    public override void WriteByte(byte value)
    {
        Check(1);
        base.WriteByte(value);
    }

    private void Check(int count)
    {
        if (Length + count > limit)
            throw new LimitExceededException();
    }
}

internal static class TelegramDates
{
    public static long ToUnixSeconds(this DateTime date) => new DateTimeOffset(DateTime.SpecifyKind(date, DateTimeKind.Utc)).ToUnixTimeSeconds();
}
