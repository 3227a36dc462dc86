using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
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
    /// malformed, refused): kept raw with the reason.</summary>
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
/// Dedupe: a message's external id is "chat_id:message_id"; an edit is "chat_id:message_id:edit:{edit_date}", a message
/// of its own (the core has no edit concept: the earlier message stays as it was, so the history is kept). The thread
/// key is the chat id, so conversations are per (bot, chat), and the identity is the user id, global across bots: one
/// user who writes to two bots is two conversations and one customer.
/// </remarks>
internal sealed class TelegramIngest(
    IInboundHandOff handOff,
    IMailboxStateStore state,
    IGrainFactory grains,
    TelegramBots bots,
    IChannelHealth health,
    IOptions<TelegramChannelOptions> options,
    TimeProvider time,
    ILogger<TelegramIngest> logger)
{
    /// <summary>The quarantine "folder" of Telegram updates (the quarantine's UID is the update_id).</summary>
    public const string QuarantineFolder = "telegram";

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
            case UpdateType.Message or UpdateType.ChannelPost or UpdateType.BusinessMessage:
                return await MessageAsync(account, settings, update.Message ?? update.ChannelPost ?? update.BusinessMessage!, edited: false, updateId.Value, raw, cancellationToken);
            case UpdateType.EditedMessage or UpdateType.EditedChannelPost or UpdateType.EditedBusinessMessage:
                return await MessageAsync(account, settings, update.EditedMessage ?? update.EditedChannelPost ?? update.EditedBusinessMessage!, edited: true, updateId.Value, raw, cancellationToken);
            case UpdateType.CallbackQuery:
                return await CallbackAsync(account, settings, update.CallbackQuery!, updateId.Value, raw, cancellationToken);
            default:
                return await KeepAsync(account, updateId, $"Update of kind '{KindOf(raw)}' is not a customer message; kept for the record.", raw, cancellationToken);
        }
    }

    private async Task<UpdateOutcome> MessageAsync(ChannelAccount account, TelegramChannelSettings settings, Message message, bool edited, int updateId, byte[] raw, CancellationToken cancellationToken)
    {
        if (message.Chat is null)
            return await KeepAsync(account, updateId, "The message has no chat.", raw, cancellationToken);
        var chat = message.Chat;
        var isPrivate = chat.Type == ChatType.Private;
        if (!isPrivate && settings.Groups == TelegramGroupHandling.Ignore)
            return await KeepAsync(account, updateId, $"Message in {chat.Type.ToString().ToLowerInvariant()} chat {chat.Id} ignored: settings.groups is \"ignore\".", raw, cancellationToken);
        if (message.IsServiceMessage)
            return await KeepAsync(account, updateId, $"Service message ({message.Type}) in chat {chat.Id}; not a customer message.", raw, cancellationToken);

        SenderIdentity sender;
        if (isPrivate)
        {
            if (message.From is not { } from)
                return await KeepAsync(account, updateId, $"Message {message.MessageId} in private chat {chat.Id} names no sender.", raw, cancellationToken);
            if (from.IsBot)
                return await KeepAsync(account, updateId, $"Message {message.MessageId} in chat {chat.Id} is from a bot ({from.Id}).", raw, cancellationToken);
            sender = new SenderIdentity(IdentityKind.Telegram, from.Id.ToString(CultureInfo.InvariantCulture), NameOf(from));
        }
        else
        {
            // A thread belongs to one sender in the core, so a group is one customer; each message names its author.
            sender = new SenderIdentity(IdentityKind.Telegram, chat.Id.ToString(CultureInfo.InvariantCulture), Clean(chat.Title) ?? $"Telegram chat {chat.Id}");
        }

        if (isPrivate && !edited && IsStart(message.Text))
            return await StartAsync(account, settings, message, updateId, raw, cancellationToken);

        var content = await ContentAsync(account, settings, message, cancellationToken);
        var chatId = chat.Id.ToString(CultureInfo.InvariantCulture);
        var originalId = $"{chatId}:{message.MessageId.ToString(CultureInfo.InvariantCulture)}";
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
            ExternalMessageId = edited ? $"{originalId}:edit:{(message.EditDate ?? message.Date).ToUnixSeconds()}" : originalId,
            Sender = sender,
            SentAt = new DateTimeOffset(DateTime.SpecifyKind(edited ? message.EditDate ?? message.Date : message.Date, DateTimeKind.Utc)),
            Text = string.Join("\n", prefix.Concat(content.Lines)),
            Html = content.Html is null ? null : string.Join("<br>\n", prefix.Select(HtmlText.Escape).Append(content.Html.Replace("\n", "<br>\n", StringComparison.Ordinal))),
            Attachments = content.Attachments,
            RawSource = raw,
            RawContentType = "application/json",
        };
        IngestResult result;
        try
        {
            result = await handOff.HandOffAsync(inbound, cancellationToken);
        }
        catch (DomainException ex)
        {
            // A refusal of this message (docs/connectors.md): kept for admins and acknowledged, never retried forever.
            logger.LogWarning("Telegram message {MessageId} on channel {Channel} refused: {Reason}", inbound.ExternalMessageId, account.Id, ex.Message);
            return await KeepAsync(account, updateId, $"Refused by the core: {ex.Message}", raw, cancellationToken);
        }
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
            key = GrainKeys.Identity(IdentityKind.Phone, phone ?? "", account.Id);
        }
        catch (FormatException)
        {
            return;
        }
        var identity = grains.GetGrain<IIdentityGrain>(key);
        var holder = await identity.GetCustomerAsync();
        if (holder is null)
            await identity.LinkToCustomerAsync(customerId, $"telegram:{account.Id}", cancellationToken);
        else if (holder != customerId)
            logger.LogInformation("Telegram channel {Channel}: shared phone {Phone} already belongs to customer {Holder}; not moved to {Customer}", account.Id, key, holder, customerId);
    }

    /// <summary>/start opens the chat with the bot: answered with the welcome text; it opens no ticket.</summary>
    private async Task<UpdateOutcome> StartAsync(ChannelAccount account, TelegramChannelSettings settings, Message message, int updateId, byte[] raw, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(settings.WelcomeText))
            return await KeepAsync(account, updateId, "/start: no welcome text is configured; nothing to answer.", raw, cancellationToken);
        if (await state.IsQuarantinedAsync(account.Id, raw, cancellationToken))
            return new UpdateOutcome.Kept("/start: a redelivery of an update already answered.");
        var answered = "answered with the welcome text";
        try
        {
            await Bot(settings).SendMessage(message.Chat.Id, HtmlText.Escape(settings.WelcomeText), ParseMode.Html, cancellationToken: cancellationToken);
        }
        catch (ApiRequestException ex)
        {
            // The user may have blocked the bot right away; the update is still handled.
            answered = $"the welcome text could not be sent: {ex.ErrorCode} {ex.Message}";
            await health.ReportErrorAsync(account.Id, $"sendMessage (welcome): {ex.ErrorCode} {ex.Message}", cancellationToken);
        }
        return await KeepAsync(account, updateId, $"/start from user {message.From?.Id}: {answered}.", raw, cancellationToken);
    }

    /// <summary>Our inline buttons (CSAT, later) send callback queries; Telegram shows a spinner until it is answered.</summary>
    private async Task<UpdateOutcome> CallbackAsync(ChannelAccount account, TelegramChannelSettings settings, CallbackQuery query, int updateId, byte[] raw, CancellationToken cancellationToken)
    {
        if (await state.IsQuarantinedAsync(account.Id, raw, cancellationToken))
            return new UpdateOutcome.Kept("Callback query: a redelivery of an update already answered.");
        var answered = "answered";
        try
        {
            await Bot(settings).AnswerCallbackQuery(query.Id, cancellationToken: cancellationToken);
        }
        catch (ApiRequestException ex)
        {
            // "query is too old": a redelivery long after the fact; nothing to answer any more.
            answered = $"not answered ({ex.ErrorCode} {ex.Message})";
        }
        return await KeepAsync(account, updateId, $"Callback query from user {query.From?.Id} with data '{Truncate(query.Data, 64)}' {answered}; no action is bound to it yet.", raw, cancellationToken);
    }

    private sealed record Content(List<string> Lines, string? Html, List<InboundAttachment> Attachments);

    private async Task<Content> ContentAsync(ChannelAccount account, TelegramChannelSettings settings, Message message, CancellationToken cancellationToken)
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
        foreach (var (file, name, type, label) in files)
        {
            var (attachment, problem) = await FetchAsync(account, settings, file, name, type, label, cancellationToken);
            if (attachment is not null)
                attachments.Add(attachment);
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
        return new Content(lines, html, attachments);
    }

    /// <summary>getFile and download; a file over the Bot API's limit, or one Telegram refuses, becomes a note for the agent.</summary>
    private async Task<(InboundAttachment? Attachment, string? Problem)> FetchAsync(ChannelAccount account, TelegramChannelSettings settings, FileBase file, string name, string contentType, string label, CancellationToken cancellationToken)
    {
        var limit = options.Value.MaxFileBytes;
        if (file.FileSize > limit)
            return (null, TooLarge(label, name, file.FileSize.Value, limit));
        if (settings.Token is null)
            return (null, $"[The {label} '{name}' could not be fetched: the bot has no token.]");
        var bot = Bot(settings);
        try
        {
            var info = await bot.GetFile(file.FileId, cancellationToken);
            if (info.FileSize > limit)
                return (null, TooLarge(label, name, info.FileSize.Value, limit));
            if (string.IsNullOrEmpty(info.FilePath))
                return (null, $"[The {label} '{name}' could not be fetched: Telegram gave no file path.]");
            using var buffer = new CappedStream(limit);
            await bot.DownloadFile(info.FilePath, buffer, cancellationToken);
            return (new InboundAttachment(name, contentType, buffer.ToArray()), null);
        }
        catch (CappedStream.LimitExceededException)
        {
            return (null, TooLarge(label, name, limit + 1, limit));
        }
        catch (ApiRequestException ex) when (ex.ErrorCode is 400 or 404)
        {
            // "file is too big", "wrong file_id": asking again would get the same answer.
            logger.LogInformation("Telegram channel {Channel}: {Label} {FileId} not fetched: {Error}", account.Id, label, file.FileId, ex.Message);
            return (null, ex.Message.Contains("too big", StringComparison.OrdinalIgnoreCase)
                ? TooLarge(label, name, file.FileSize ?? limit + 1, limit)
                : $"[The {label} '{name}' could not be fetched from Telegram: {ex.Message}]");
        }
        catch (ApiRequestException ex)
        {
            // 401, 429, 5xx: the update is not acknowledged and comes again.
            throw new HttpRequestException($"getFile: {ex.ErrorCode} {ex.Message}", ex, ex.ErrorCode is > 0 ? (HttpStatusCode)ex.ErrorCode : null);
        }
    }

    private static string TooLarge(string label, string name, long size, long limit) =>
        $"[The {label} '{name}' ({size / (1024.0 * 1024):0.#} MB) is larger than the {limit / (1024.0 * 1024):0.#} MB bots may download from Telegram; ask the customer to send it another way.]";

    private async Task<UpdateOutcome> KeepAsync(ChannelAccount account, int? updateId, string reason, byte[] raw, CancellationToken cancellationToken)
    {
        logger.LogInformation("Telegram update {UpdateId} of channel {Channel} kept raw: {Reason}", updateId, account.Id, reason);
        await state.QuarantineAsync(new QuarantinedMail(account.Id, QuarantineFolder, 0, updateId is > 0 ? (uint)updateId.Value : 0, reason, raw, time.GetUtcNow()), cancellationToken);
        return new UpdateOutcome.Kept(reason);
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

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Split(". ", 2)[0];
}

/// <summary>A memory stream that refuses to grow past a limit: a file server lying about a size cannot make us buffer more.</summary>
internal sealed class CappedStream(long limit) : MemoryStream
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
