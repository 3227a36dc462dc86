using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Logging;

namespace Crm.Connectors.WebChat;

/// <summary>
/// A file a visitor sends (<c>POST /api/v1/webchat/{widget}/uploads</c>, multipart: <c>file</c>, <c>conversationId</c>,
/// <c>clientMessageId</c>, optional <c>text</c>; the visitor token as bearer). Checked in the order: the visitor's own
/// conversation (403), uploads on for the widget (403), size (413), type (415: the widget's list, and the bytes must
/// be what the type says, so an HTML page sent as "image/png" is refused), the visitor's message budget (429). Then it
/// is handed off like a chat message, with the same dedupe on the client message id, and acknowledged after.
/// </summary>
internal static partial class VisitorUploads
{
    /// <summary>Largest multipart request: the largest file any widget may allow plus room for the other fields.</summary>
    public const long MaxRequestBytes = WebChatSettings.MaxUploadBytesLimit + 64 * 1024;

    public static async Task<Results<Ok<SendAck>, ProblemHttpResult>> UploadAsync(
        string widget, HttpContext http, VisitorTokens tokens, IChannelAccounts accounts, IInboundHandOff handOff, VisitorRateLimits limits,
        IGrainFactory grains, TimeProvider time, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var visitor = tokens.Read(WebChatGate.TokenOf(http), widget);
        if (visitor is null)
            return Problems.Of(ProblemKind.Unauthorized, "The visitor token is missing, expired or not for this widget; start a new session.", "token");
        if (!http.Request.HasFormContentType)
            return Problems.Of(ProblemKind.MalformedBody, "Send the file as multipart/form-data with the fields file, conversationId and clientMessageId.", "body");
        var form = await http.Request.ReadFormAsync(cancellationToken);
        if (form["conversationId"].ToString() != visitor.SessionId)
            return Problems.Of(ProblemKind.Forbidden, "This conversation is not yours; a visitor can only write to their own conversation.", "conversationId");
        var clientMessageId = form["clientMessageId"].ToString();
        if (!ClientMessageIdPattern().IsMatch(clientMessageId))
            return Problems.Invalid("clientMessageId", "clientMessageId must be 1-64 letters, digits, '-' or '_'.");
        var settings = WebChatGate.WidgetOf(accounts, widget)!;
        if (settings.MaxUploadBytes == 0)
            return Problems.Of(ProblemKind.Forbidden, "This widget does not accept files.", "file");
        if (form.Files.GetFile("file") is not { } file || file.Length == 0)
            return Problems.Invalid("file", "Choose a file to send.");
        if (file.Length > settings.MaxUploadBytes)
            return Problems.Of(ProblemKind.TooLarge, $"The file is too large: at most {settings.MaxUploadBytes / 1024 / 1024.0:0.#} MB.", "file");
        var text = form["text"].ToString().Trim();
        if (text.Length > 4000)
            return Problems.Invalid("text", "The message with the file is at most 4000 characters.");

        var bytes = new byte[file.Length];
        await using (var stream = file.OpenReadStream())
            await stream.ReadExactlyAsync(bytes, cancellationToken);
        var declared = (file.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        if (!settings.UploadContentTypes.Contains(declared, StringComparer.OrdinalIgnoreCase) || !LooksLike(declared, bytes))
            return UnsupportedType(settings);
        if (limits.TryAcquireMessage(visitor, VisitorHub.AddressOf(http)) is { } wait)
            return Problems.Of(ProblemKind.RateLimited, $"You are sending messages too quickly. Please wait {Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))} seconds and send again.");

        var sentAt = time.GetUtcNow();
        var fileName = Path.GetFileName(file.FileName);
        var message = new InboundMessage
        {
            ChannelAccountId = visitor.WidgetId,
            ThreadKey = visitor.SessionId,
            ExternalMessageId = $"{visitor.SessionId}:{clientMessageId}",
            Sender = new SenderIdentity(IdentityKind.WebChat, visitor.IdentityValue),
            SentAt = sentAt,
            Text = text.Length > 0 ? text : fileName,
            Attachments = [new InboundAttachment(fileName, declared, bytes)],
            // The file itself is the attachment; the raw source records what the request said about it.
            RawSource = JsonSerializer.SerializeToUtf8Bytes(new
            {
                conversationId = visitor.SessionId, clientMessageId, text, fileName, contentType = file.ContentType, length = bytes.Length,
                sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes)), visitor = visitor.VisitorId,
            }),
            RawContentType = "application/json",
        };
        IngestResult result;
        try
        {
            result = await handOff.HandOffAsync(message, cancellationToken);
        }
        catch (DomainException ex)
        {
            return Problems.From(ex);
        }
        if (!result.Duplicate)
        {
            try
            {
                await grains.GetGrain<IWebChatSessionGrain>(visitor.ConversationKey)
                    .PublishAsync(new VisitorEvent(VisitorEventKind.Message, new ChatLine(result.MessageId, "visitor", message.Text, sentAt, clientMessageId, 1)));
            }
            catch (Exception ex)
            {
                loggers.CreateLogger(typeof(VisitorUploads)).LogDebug(ex, "Echo of upload {Message} failed", result.MessageId);
            }
        }
        return TypedResults.Ok(new SendAck(result.MessageId, clientMessageId, result.Duplicate, sentAt));
    }

    /// <summary>415 with the invalid-field problem type (a client switches on the type; the status says why).</summary>
    private static ProblemHttpResult UnsupportedType(WebChatSettings settings)
    {
        var details = Problems.Details(ProblemKind.Invalid, $"Files of this type cannot be sent here; allowed: {string.Join(", ", settings.UploadContentTypes)}.", "file");
        details.Status = StatusCodes.Status415UnsupportedMediaType;
        return TypedResults.Problem(details);
    }

    /// <summary>Whether the bytes are what the declared type says (magic numbers; text must be UTF-8 without NULs).
    /// A type we cannot check is refused rather than trusted.</summary>
    internal static bool LooksLike(string contentType, ReadOnlySpan<byte> bytes) => contentType switch
    {
        "image/png" => bytes.StartsWith(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }),
        "image/jpeg" => bytes.StartsWith(new byte[] { 0xFF, 0xD8, 0xFF }),
        "image/gif" => bytes.StartsWith("GIF87a"u8) || bytes.StartsWith("GIF89a"u8),
        "image/webp" => bytes.Length > 12 && bytes.StartsWith("RIFF"u8) && bytes[8..12].SequenceEqual("WEBP"u8),
        "application/pdf" => bytes.StartsWith("%PDF-"u8),
        "text/plain" => bytes.IndexOf((byte)0) < 0 && System.Text.Unicode.Utf8.IsValid(bytes),
        _ => false,
    };

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex ClientMessageIdPattern();
}
