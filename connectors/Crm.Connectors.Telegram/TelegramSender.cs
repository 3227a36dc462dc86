using System.Collections.Concurrent;
using System.Globalization;
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

/// <summary>
/// Sends agent replies to the conversation's chat: the text HTML-escaped (parse mode HTML, so nothing the agent typed
/// is read as markup) in parts of at most 4096 characters, then each file with sendPhoto (JPEG, PNG, WebP up to
/// 10 MB) or sendDocument. 429 honours retry_after: a short one is waited out here, a longer one hands the message back
/// to the outbox (Retry) and holds the bot's other sends until it has passed. 403 (the user blocked the bot, or the
/// bot was removed from the group), 400 (chat not found) and 413 (a file over Telegram's upload limit) are final (Fail,
/// in Telegram's words for admins, with what it means for the agent as <see cref="OutboundResult.AgentReason"/>); a file over <see cref="TelegramChannelOptions.MaxUploadBytes"/> fails the reply before anything
/// is sent. The outbox records
/// "chat_id:message_id[,message_id…]" as the message's external id.
/// </summary>
/// <remarks>A message in several parts stores each confirmed part with its outbox row before the next goes
/// (<see cref="OutboundDelivery.RecordSentPartsAsync"/>), and marks the next part in flight right before its request
/// (<see cref="OutboundDelivery.MarkPartInFlightAsync"/>), so a retry after a long 429, a restart or a kill between
/// parts sends only the rest (reviews ER10, FX1, EO1); a stop while a request is out, or an answer lost after the
/// request was written (a reset, a cut answer, a 5xx), is Unknown ("k of n parts sent"), never a resend (EO2); only a
/// connection that never opened is a retry. This node also remembers them, forgotten on every final outcome and after a day. A photo Telegram refuses (400, e.g. PHOTO_INVALID_DIMENSIONS) is sent once more as a document; a final
/// refusal after some parts went out says how many the customer has.</remarks>
internal sealed class TelegramSender(
    IChannelAccounts accounts,
    TelegramBots bots,
    IOptions<TelegramChannelOptions> options,
    TimeProvider time,
    ILogger<TelegramSender> logger) : IOutboundSender
{
    /// <summary>Telegram's limit on a message's text, after entity parsing.</summary>
    public const int MaxTextLength = 4096;

    private const long MaxPhotoBytes = 10L * 1024 * 1024;
    private const int MaxInlineWaits = 3;

    private static readonly TimeSpan SentPartsExpiry = TimeSpan.FromDays(1);

    private readonly ConcurrentDictionary<Guid, (List<int> Ids, DateTimeOffset Since)> _sentParts = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _floodUntil = new(StringComparer.Ordinal);

    public ChannelKind Channel => ChannelKind.Telegram;

    /// <summary>A second send mails (or messages) the customer twice: see <see cref="IOutboundSender.ResendDuplicates"/>.</summary>
    public bool ResendDuplicates => true;

    /// <summary>Every request, a single part's too, is marked in flight right before it goes (review RC3).</summary>
    public bool MarksOwnParts => true;

    public async Task<OutboundResult> SendAsync(OutboundDelivery delivery, CancellationToken cancellationToken = default)
    {
        var account = accounts.Find(delivery.ChannelAccountId);
        if (account?.SettingsAs<TelegramChannelSettings>() is not { } settings)
            return OutboundResult.Fail($"Channel '{delivery.ChannelAccountId}' is not a Telegram channel.");
        if (string.IsNullOrEmpty(settings.Token))
            return OutboundResult.Retry("settings.token is not set: give the bot's token from @BotFather.");
        if (!long.TryParse(delivery.ThreadKey, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var chatId))
            return OutboundResult.Fail($"Thread '{delivery.ThreadKey}' is not a Telegram chat id.");
        if (_floodUntil.TryGetValue(account.Id, out var until) && until > time.GetUtcNow())
            return OutboundResult.Retry($"429 Too Many Requests: flood control for {(until - time.GetUtcNow()).TotalSeconds:0} s more.");

        var parts = Split(delivery.Text ?? "").Select(text => (Text: (string?)text, File: (OutboundAttachment?)null))
            .Concat(delivery.Attachments.Select(file => (Text: (string?)null, File: (OutboundAttachment?)file))).ToList();
        if (parts.Count == 0)
            return OutboundResult.Fail("The message has neither text nor files.");
        // Checked before anything goes out: a reply whose file Telegram must refuse (413) is not sent in part.
        var maxUpload = options.Value.MaxUploadBytes;
        if (delivery.Attachments.FirstOrDefault(f => f.Content.LongLength > maxUpload) is { } tooLarge)
            return OutboundResult.Fail($"The file '{tooLarge.FileName}' ({Megabytes(tooLarge.Content.LongLength)} MB) is larger than the {Megabytes(maxUpload)} MB a bot may send through Telegram; nothing was sent. Share it as a link instead.")
                with { AgentReason = $"the file '{tooLarge.FileName}' is larger than the {Megabytes(maxUpload)} MB a bot may send through Telegram; nothing was sent" };

        var bot = bots.For(settings.Token);
        var now = time.GetUtcNow();
        foreach (var (id, entry) in _sentParts)
            if (now - entry.Since > SentPartsExpiry)
                _sentParts.TryRemove(id, out _);
        var sent = _sentParts.GetOrAdd(delivery.MessageId, _ => ([], now)).Ids;
        // The parts the outbox stored are what went out after a restart or on another node (review ER10); this node's
        // memory may know one more if storing it failed. Both only grow, so the longer one is the more recent.
        if (StoredParts(delivery.SentParts) is { } stored && stored.Count > sent.Count)
        {
            sent.Clear();
            sent.AddRange(stored);
        }
        var waits = 0;
        var asDocument = false;
        // The part whose in-flight mark the outbox holds (none at first: see MarksOwnParts).
        var marked = 0;
        var stoppedBeforeRequest = false;
        // Nothing is on its way: the mark goes, with the parts confirmed so far (review RC7).
        async Task LiftAsync()
        {
            if (marked != 0 && delivery.RecordSentPartsAsync is { } lift)
            {
                await lift(string.Join(',', sent.Select(id => id.ToString(CultureInfo.InvariantCulture))));
                marked = 0;
            }
        }
        while (sent.Count < parts.Count)
        {
            // Nothing is on its way to Telegram here, and every part confirmed so far is stored: a stop may throw, and
            // the outbox's next attempt sends the rest.
            cancellationToken.ThrowIfCancellationRequested();
            var (text, file) = parts[sent.Count];
            try
            {
                // Stored before the request goes, so a kill while it is out names the part ("1 of 3 parts sent"), and a
                // kill before it resumes after the stored parts (review EO1).
                if (marked != sent.Count + 1 && delivery.MarkPartInFlightAsync is { } mark)
                {
                    await mark(sent.Count + 1, parts.Count);
                    marked = sent.Count + 1;
                    // A stop during the mark's commit: the request would be refused before it left, yet the row would
                    // say it may have arrived (review RC7). Lift the mark and stop: the attempt resumes.
                    if (cancellationToken.IsCancellationRequested)
                    {
                        await LiftAsync();
                        stoppedBeforeRequest = true;
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                }
                var message = file is null
                    ? await bot.SendMessage(chatId, HtmlText.Escape(text!), ParseMode.Html, cancellationToken: cancellationToken)
                    : await SendFileAsync(bot, chatId, file, asDocument, cancellationToken);
                sent.Add(message.MessageId);
                asDocument = false;
                if (sent.Count < parts.Count && delivery.RecordSentPartsAsync is { } record)
                    await record(string.Join(',', sent.Select(id => id.ToString(CultureInfo.InvariantCulture))));
            }
            catch (Exception ex) when (cancellationToken.IsCancellationRequested && !stoppedBeforeRequest && ex is OperationCanceledException or RequestException { InnerException: OperationCanceledException })
            {
                // Cut short (the service stopping, the outbox's timeout) while a request was out: Telegram may have taken
                // it, and sending it again would repeat it (review FX1). Like SMTP after the final dot: not confirmed.
                return NotConfirmed(account.Id, delivery.MessageId, sent.Count, parts.Count, "cut short");
            }
            catch (ApiRequestException ex) when (ex.ErrorCode == 400 && file is not null && !asDocument && IsPhoto(file))
            {
                logger.LogInformation("Telegram channel {Channel}: photo '{File}' refused ({Error}); sending it as a document", account.Id, file.FileName, ex.Message);
                asDocument = true;
            }
            catch (ApiRequestException ex) when (ex.ErrorCode == 429)
            {
                var retryAfter = TimeSpan.FromSeconds(Math.Max(1, ex.Parameters?.RetryAfter ?? 1));
                if (retryAfter <= options.Value.MaxInlineRetryAfter && ++waits <= MaxInlineWaits)
                {
                    // Telegram took nothing: the mark is lifted for the wait, so a kill during it resumes (review EO1).
                    await LiftAsync();
                    await Task.Delay(retryAfter, time, cancellationToken);
                    continue;
                }
                _floodUntil[account.Id] = time.GetUtcNow() + retryAfter;
                await LiftAsync();
                return OutboundResult.Retry($"429 {ex.Message} (retry after {retryAfter.TotalSeconds:0} s; {sent.Count} of {parts.Count} parts sent)");
            }
            catch (ApiRequestException ex) when (ex.ErrorCode is 403 or 400 or 413)
            {
                _sentParts.TryRemove(delivery.MessageId, out _);
                await LiftAsync();
                logger.LogInformation("Telegram channel {Channel}: message {MessageId} refused: {Code} {Error}", account.Id, delivery.MessageId, ex.ErrorCode, ex.Message);
                var meaning = Meaning(ex);
                return OutboundResult.Fail(sent.Count == 0
                    ? $"{ex.ErrorCode} {ex.Message}"
                    : $"{ex.ErrorCode} {ex.Message} ({sent.Count} of {parts.Count} parts were delivered before; sending it again repeats them)")
                    with { AgentReason = sent.Count == 0 ? meaning : $"{meaning} ({sent.Count} of {parts.Count} parts reached the customer before)", RefusedByRecipient = IsAboutThisMessage(ex) };
            }
            catch (RequestException ex) when (ex is not ApiRequestException && ex.HttpStatusCode == System.Net.HttpStatusCode.RequestEntityTooLarge)
            {
                // A 413 from a proxy in front of the Bot API, without Telegram's JSON: as final as Telegram's own.
                _sentParts.TryRemove(delivery.MessageId, out _);
                // Not counted as this message's own refusal: a proxy that refuses every upload is a fault of the channel (CR8).
                return OutboundResult.Fail($"413 {ex.Message} ({sent.Count} of {parts.Count} parts were delivered before)")
                    with { AgentReason = "a file is larger than Telegram accepts" };
            }
            catch (RequestException ex) when (ex is not ApiRequestException && NeverLeft(ex))
            {
                // No connection to the Bot API (refused, DNS, TLS, connect timeout): this part reached nothing, so another
                // attempt sends it, after the parts confirmed so far.
                return OutboundResult.Retry($"{ex.Message} ({sent.Count} of {parts.Count} parts sent)");
            }
            catch (RequestException ex) when (ex is not ApiRequestException || ex is ApiRequestException { ErrorCode: >= 500 })
            {
                // The request went out and its answer was lost (a reset connection, a cut answer, a proxy's 502/504,
                // Telegram's own 5xx, no answer in time): Telegram may have taken the part, and a retry would repeat it
                // (review EO2). At most once: not confirmed.
                logger.LogWarning(ex, "Telegram channel {Channel}: the answer to part {Part} of {Parts} of message {MessageId} was lost", account.Id, sent.Count + 1, parts.Count, delivery.MessageId);
                return NotConfirmed(account.Id, delivery.MessageId, sent.Count, parts.Count, $"answer lost ({ex.Message})");
            }
            catch (ApiRequestException ex)
            {
                // 401/404 (a revoked token: an admin can fix it): Telegram refused the request, worth another attempt.
                return OutboundResult.Retry($"{ex.ErrorCode} {ex.Message}");
            }
        }
        _sentParts.TryRemove(delivery.MessageId, out _);
        var ids = $"{chatId.ToString(CultureInfo.InvariantCulture)}:{string.Join(',', sent)}";
        return OutboundResult.Sent(ids.Length <= 255 ? ids : ids[..ids.LastIndexOf(',', 254)]);
    }

    private OutboundResult NotConfirmed(string account, Guid messageId, int sent, int parts, string why)
    {
        _sentParts.TryRemove(messageId, out _);
        logger.LogWarning("Telegram channel {Channel}: message {MessageId} {Why} while part {Part} of {Parts} was being sent", account, messageId, why, sent + 1, parts);
        return OutboundResult.Unknown($"{char.ToUpperInvariant(why[0])}{why[1..]} while part {sent + 1} of {parts} was being sent; {sent} of {parts} parts sent",
            sent == 0
                ? parts == 1
                    ? "the send was cut short while the reply was on its way to Telegram, so it may have been delivered; check with the customer before resending"
                    : $"the send was cut short while part 1 of {parts} was on its way to Telegram: 0 of {parts} parts are confirmed, and part 1 may have reached the customer; check with the customer before resending"
                : $"the send was cut short after {sent} of {parts} parts reached the customer, and part {sent + 1} may have too; check with the customer before resending the rest");
    }

    /// <summary>Whether a failed request provably never reached the Bot API: the connection itself failed (refused, no
    /// such host, TLS, an HTTPS proxy's tunnel, <c>ConnectTimeout</c>). Anything after the request was written may have
    /// been taken (review EO2). A connect timeout surfaces as a cancellation whose inner <see cref="TimeoutException"/>
    /// names ConnectTimeout, under Telegram.Bot's own wrapper (review RC2), so the whole chain is walked.</summary>
    internal static bool NeverLeft(Exception ex)
    {
        for (Exception? inner = ex; inner is not null; inner = inner.InnerException)
            if (inner is System.Net.Http.HttpRequestException { HttpRequestError: System.Net.Http.HttpRequestError.ConnectionError
                    or System.Net.Http.HttpRequestError.NameResolutionError or System.Net.Http.HttpRequestError.SecureConnectionError
                    or System.Net.Http.HttpRequestError.ProxyTunnelError }
                || (inner is TimeoutException && inner.Message.Contains("ConnectTimeout", StringComparison.Ordinal)))
                return true;
        return false;
    }

    /// <summary>The message ids the outbox stored for a message's earlier attempts ("5001,5002"), or null.</summary>
    private static List<int>? StoredParts(string? stored) =>
        string.IsNullOrEmpty(stored) ? null
            : [.. stored.Split(',').Select(id => int.Parse(id, NumberStyles.None, CultureInfo.InvariantCulture))];

    /// <summary>Whether Telegram refused this message for reasons of its chat or its content (the customer blocked the
    /// bot, the chat is gone, a file too large or malformed), so the channel itself is fine (CT12). Any other 400 (our
    /// own request Telegram cannot parse) would fail every message, so it stays a channel error (review CR8). A group
    /// where the bot may not post, whose topic is closed or which became a supergroup is about that chat (review EO4):
    /// anyone can add the bot to such a group.</summary>
    internal static bool IsAboutThisMessage(ApiRequestException ex)
    {
        if (ex.ErrorCode is 403 or 413)
            return true;
        var words = ex.Message.ToLowerInvariant();
        return ex.ErrorCode == 400 && ChatRefusals.Any(phrase => words.Contains(phrase, StringComparison.Ordinal));
    }

    /// <summary>Telegram's 400 descriptions (lower case) that are about one chat or one message, not our requests.</summary>
    private static readonly string[] ChatRefusals =
    [
        "chat not found", "user not found", "peer_id_invalid", "user is deactivated", "photo_invalid", "file must be non-empty",
        "file is too big", "too long",
        "not enough rights", "have no rights", "need administrator rights", "chat_write_forbidden", "chat_restricted",
        "topic_closed", "topic_deleted", "message thread not found", "upgraded to a supergroup", "bot is not a member",
    ];

    /// <summary>What a final refusal means for the agent, from a fixed set of phrases (Telegram's own words go to the
    /// outbox's error and the channel's health, for admins).</summary>
    internal static string Meaning(ApiRequestException ex)
    {
        var words = ex.Message.ToLowerInvariant();
        return ex.ErrorCode switch
        {
            403 when words.Contains("blocked by the user", StringComparison.Ordinal) => "the customer blocked the bot",
            403 when words.Contains("user is deactivated", StringComparison.Ordinal) => "the customer's Telegram account was deleted",
            403 when words.Contains("kicked", StringComparison.Ordinal) || words.Contains("not a member", StringComparison.Ordinal) => "the bot was removed from the group",
            403 when words.Contains("initiate conversation", StringComparison.Ordinal) => "the customer has not started a chat with the bot",
            403 => "Telegram does not let the bot write to this chat",
            400 when words.Contains("chat not found", StringComparison.Ordinal) => "the chat no longer exists on Telegram",
            400 when words.Contains("upgraded to a supergroup", StringComparison.Ordinal) => "the group became a supergroup on Telegram; the customer's next message there opens the new chat",
            400 when words.Contains("rights", StringComparison.Ordinal) || words.Contains("chat_write_forbidden", StringComparison.Ordinal)
                || words.Contains("chat_restricted", StringComparison.Ordinal) || words.Contains("topic_", StringComparison.Ordinal)
                || words.Contains("thread not found", StringComparison.Ordinal) => "Telegram does not let the bot write to this chat",
            413 => "a file is larger than Telegram accepts",
            _ => "Telegram refused the message",
        };
    }

    private static string Megabytes(long bytes) => (bytes / (1024.0 * 1024)).ToString("0.#", CultureInfo.InvariantCulture);

    /// <summary>Sent with sendPhoto (Telegram recompresses it and shows it inline): JPEG, PNG or WebP of at most 10 MB,
    /// Telegram's photo limit; a larger image goes as a document.</summary>
    private static bool IsPhoto(OutboundAttachment file) =>
        file.ContentType.ToLowerInvariant() is "image/jpeg" or "image/png" or "image/webp" && file.Content.LongLength <= MaxPhotoBytes;

    private static Task<Message> SendFileAsync(TelegramBotClient bot, long chatId, OutboundAttachment file, bool asDocument, CancellationToken cancellationToken)
    {
        var input = InputFile.FromStream(new MemoryStream(file.Content, writable: false), file.FileName);
        return IsPhoto(file) && !asDocument
            ? bot.SendPhoto(chatId, input, cancellationToken: cancellationToken)
            : bot.SendDocument(chatId, input, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Splits plain text into parts of at most <see cref="MaxTextLength"/> UTF-16 units (what Telegram counts), at the
    /// last line break, else the last space, of each window; never inside a surrogate pair. Escaping comes after the
    /// split, so an entity like "&amp;amp;" is never cut and does not count against the limit (Telegram counts the text
    /// after parsing).
    /// </summary>
    internal static List<string> Split(string text, int max = MaxTextLength)
    {
        var parts = new List<string>();
        var rest = text.AsSpan().Trim();
        while (rest.Length > max)
        {
            var window = rest[..max];
            var cut = window.LastIndexOf('\n');
            if (cut < max / 2)
                cut = Math.Max(cut, window.LastIndexOf(' '));
            if (cut <= 0)
                cut = char.IsHighSurrogate(window[^1]) ? max - 1 : max;
            var part = rest[..cut].TrimEnd();
            if (part.Length > 0)
                parts.Add(part.ToString());
            rest = rest[cut..].TrimStart();
        }
        if (rest.Length > 0)
            parts.Add(rest.ToString());
        return parts;
    }
}
