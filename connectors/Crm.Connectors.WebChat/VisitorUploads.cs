using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Logging;

namespace Crm.Connectors.WebChat;

/// <summary>
/// A file a visitor sends (<c>POST /api/v1/webchat/{widget}/uploads</c>, multipart: <c>file</c>, <c>conversationId</c>,
/// <c>clientMessageId</c>, optional <c>text</c>; the visitor token as bearer). Before the body is read: the token (401),
/// uploads on for the widget (403), the declared length against the widget's limit (413), the visitor's message budget
/// and the upload byte quotas per visitor and per address (429). Then the body, read no further than the widget's
/// limit (413): the visitor's own conversation (403), type (415: the widget's list, and the bytes must be what the type
/// says, so an HTML page sent as "image/png" is refused). The stored name gets the checked type's extension. Then it
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
        var standing = await grains.GetGrain<IWebChatVisitorGrain>(visitor.VisitorKey).UseAsync(visitor.Generation);
        if (standing.Blocked)
            return Problems.Of(ProblemKind.Forbidden, WebChatEndpoints.BlockedMessage, "token");
        if (!standing.Accepts(visitor.Generation))
            return Problems.Of(ProblemKind.Unauthorized, "This chat session has ended or was renewed in another window; start a new session.", "token");
        // Everything that can be decided without the body is decided before a byte of it is read.
        var settings = WebChatGate.WidgetOf(accounts, widget)!;
        if (settings.MaxUploadBytes == 0)
            return Problems.Of(ProblemKind.Forbidden, "This widget does not accept files.", "file");
        if (!http.Request.HasFormContentType)
            return Problems.Of(ProblemKind.MalformedBody, "Send the file as multipart/form-data with the fields file, conversationId and clientMessageId.", "body");
        var maxBody = settings.MaxUploadBytes + FormOverheadBytes;
        if (http.Request.ContentLength > maxBody)
            return TooLarge(settings);
        var address = VisitorHub.AddressOf(http);
        if (limits.TryAcquireMessage(visitor, address) is { } wait)
            return Problems.Of(ProblemKind.RateLimited, $"You are sending messages too quickly. Please wait {Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))} seconds and send again.");
        // The quota is charged with what the request may carry; a body without a length is charged the widget's limit.
        if (limits.TryAcquireUpload(visitor, address, http.Request.ContentLength ?? maxBody) is not null)
            return Problems.Of(ProblemKind.RateLimited, "You have sent too many files for now. Please try again later, or describe the problem in a message.", "file");

        // The form is read with this widget's limit, not the endpoint's largest: a longer body stops being read there.
        http.Features.Set<IFormFeature>(new FormFeature(http.Request, new FormOptions { MultipartBodyLengthLimit = maxBody, ValueCountLimit = 16 }));
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
            bodyLimit.MaxRequestBodySize = maxBody;
        IFormCollection form;
        try
        {
            form = await http.Request.ReadFormAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is InvalidDataException or BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge })
        {
            return TooLarge(settings);
        }
        if (form["conversationId"].ToString() != visitor.SessionId)
            return Problems.Of(ProblemKind.Forbidden, "This conversation is not yours; a visitor can only write to their own conversation.", "conversationId");
        var clientMessageId = form["clientMessageId"].ToString();
        if (!ClientMessageIdPattern().IsMatch(clientMessageId))
            return Problems.Invalid("clientMessageId", "clientMessageId must be 1-64 letters, digits, '-' or '_'.");
        if (form.Files.GetFile("file") is not { } file || file.Length == 0)
            return Problems.Invalid("file", "Choose a file to send.");
        if (file.Length > settings.MaxUploadBytes)
            return TooLarge(settings);
        var text = form["text"].ToString().Trim();
        if (text.Length > 4000)
            return Problems.Invalid("text", "The message with the file is at most 4000 characters.");

        var bytes = new byte[file.Length];
        await using (var stream = file.OpenReadStream())
            await stream.ReadExactlyAsync(bytes, cancellationToken);
        var declared = (file.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        if (!settings.UploadContentTypes.Contains(declared, StringComparer.OrdinalIgnoreCase) || !LooksLike(declared, bytes))
            return UnsupportedType(settings);

        var sentAt = time.GetUtcNow();
        var fileName = NameFor(Path.GetFileName(file.FileName), declared);
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

    private const long FormOverheadBytes = 64 * 1024;

    private static ProblemHttpResult TooLarge(WebChatSettings settings) =>
        Problems.Of(ProblemKind.TooLarge, $"The file is too large: at most {settings.MaxUploadBytes / 1024 / 1024.0:0.#} MB.", "file");

    /// <summary>The stored name ends in the extension of the type the bytes were checked against (a script sent as
    /// text/plain under "invoice.pdf.js" is stored as "invoice.pdf.js.txt"), so an agent's double-click opens it as
    /// what it was checked to be, never runs it.</summary>
    internal static string NameFor(string fileName, string contentType)
    {
        var extension = contentType switch
        {
            "image/png" => ".png",
            "image/jpeg" => ".jpg",
            "image/gif" => ".gif",
            "image/webp" => ".webp",
            "application/pdf" => ".pdf",
            _ => ".txt",
        };
        var name = string.IsNullOrWhiteSpace(fileName) ? "file" : fileName;
        var current = Path.GetExtension(name);
        return current.Equals(extension, StringComparison.OrdinalIgnoreCase) || (extension == ".jpg" && current.Equals(".jpeg", StringComparison.OrdinalIgnoreCase))
            ? name
            : name + extension;
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
