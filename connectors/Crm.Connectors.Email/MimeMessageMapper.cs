using System.Text;
using Crm.Service.Contracts;
using Microsoft.Extensions.Options;
using MimeKit;
using MimeKit.Tnef;

namespace Crm.Connectors.Email;

/// <summary>A mail as the connector understands it, before threading decides its conversation.</summary>
internal sealed record ParsedMail
{
    public required MimeMessage Message { get; init; }
    /// <summary>Message-ID (normalized), or a hash of the raw bytes when the mail has none.</summary>
    public required string ExternalMessageId { get; init; }
    public required MailboxAddress From { get; init; }
    public required DateTimeOffset SentAt { get; init; }
    public string? Subject { get; init; }
    public string? Text { get; init; }
    public string? Html { get; init; }
    public required IReadOnlyList<InboundAttachment> Attachments { get; init; }
    /// <summary>In-Reply-To first, then References newest first: the messages this mail answers.</summary>
    public required IReadOnlyList<string> ReferencedIds { get; init; }
    public required byte[] RawSource { get; init; }
}

/// <summary>Why a mail could not be mapped; the reader quarantines its raw source with this reason.</summary>
internal sealed class UnmappableMailException(string reason, Exception? inner = null) : Exception(reason, inner);

/// <summary>Attachment limits of the core (<c>Ingest</c> section), applied here so one oversized part never gets a
/// whole mail refused: the part is left out and named in the text, and stays in the raw source.</summary>
public sealed class EmailIngestLimits
{
    public const string Section = "Ingest";

    public long MaxAttachmentBytes { get; set; } = 25 * 1024 * 1024;

    public int MaxAttachments { get; set; } = 50;
}

/// <summary>
/// MIME → our inbound message, with MimeKit: text and HTML bodies (the grain sanitizes the HTML), legacy charsets,
/// RFC 2047 headers, attachments and inline (cid:) images, TNEF (winmail.dat) unpacked, and the raw bytes kept.
/// </summary>
internal sealed class MimeMessageMapper(IOptions<EmailIngestLimits> limits)
{
    private static readonly ParserOptions Parsing = CreateParserOptions();

    private static ParserOptions CreateParserOptions()
    {
        // GB2312, Big5, windows-125x and the other legacy charsets of old mail are not in .NET without this.
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        var options = ParserOptions.Default.Clone();
        // Undeclared 8-bit text in old mail is more often windows-1252 than anything else; UTF-8 is tried first.
        options.CharsetEncoding = Encoding.GetEncoding(1252);
        return options;
    }

    /// <summary>Parses a mail's bytes.</summary>
    /// <exception cref="UnmappableMailException">Not a mail at all, or no sender to attribute it to.</exception>
    public ParsedMail Parse(byte[] raw, DateTimeOffset receivedAt, CancellationToken cancellationToken = default)
    {
        MimeMessage message;
        try
        {
            using var stream = new MemoryStream(raw, writable: false);
            message = MimeMessage.Load(Parsing, stream, cancellationToken);
        }
        catch (FormatException ex)
        {
            throw new UnmappableMailException($"Not a MIME message: {ex.Message}", ex);
        }
        return Map(message, raw, receivedAt);
    }

    /// <summary>The first bytes of a mail, where its header is: what header-only readers (lanes, oversize mail) load, so a
    /// header flood costs them a bounded amount.</summary>
    public static byte[] HeaderPrefix(byte[] raw, int maxBytes = 64 * 1024) => raw.Length <= maxBytes ? raw : raw[..maxBytes];

    /// <summary>A mail too large to parse: stored raw, with a note that says so to the agent.</summary>
    public static string OversizeNote(long length, int limit) =>
        $"[This email is {length / 1024.0 / 1024.0:0.0} MB, over the {limit / 1024.0 / 1024.0:0.#} MB this mailbox parses. It was not parsed; its raw source is kept with the message.]";

    private ParsedMail Map(MimeMessage message, byte[] raw, DateTimeOffset receivedAt)
    {
        var from = message.From.Mailboxes.FirstOrDefault(m => IsAddress(m.Address))
            ?? (message.Sender is { } sender && IsAddress(sender.Address) ? sender : null)
            ?? message.ReplyTo.Mailboxes.FirstOrDefault(m => IsAddress(m.Address));
        if (from is null)
            throw new UnmappableMailException(message.From.Count == 0 ? "The mail has no From address." : $"The From header '{Truncate(message.From.ToString(), 200)}' holds no usable address.");

        var notes = new List<string>();
        var attachments = new List<InboundAttachment>();
        string? text = message.TextBody;
        string? html = message.HtmlBody;
        foreach (var entity in message.BodyParts)
        {
            switch (entity)
            {
                case TnefPart tnef:
                    Unpack(tnef, attachments, notes, ref text, ref html);
                    break;
                case MessagePart attached when attached.Message is { } inner:
                    using (var buffer = new MemoryStream())
                    {
                        inner.WriteTo(buffer);
                        Add(attachments, notes, FileNameOf(attached, inner.Subject), "message/rfc822", buffer.ToArray());
                    }
                    break;
                case MimePart part when IsStoredPart(part, text, html):
                    Add(attachments, notes, FileNameOf(part, null), part.ContentType.MimeType, Decode(part));
                    break;
            }
        }
        if (notes.Count > 0)
            text = string.Join("\n", notes) + "\n\n" + text;

        var referenced = ReferencedIds(message.InReplyTo, message.References, MaxReferencedIds);

        return new ParsedMail
        {
            Message = message,
            ExternalMessageId = EmailIds.Normalize(message.MessageId) ?? EmailIds.OfRawSource(raw),
            From = from,
            // A missing or absurd Date header (MimeKit gives MinValue) falls back to when we received it.
            SentAt = message.Date.Year is > 1970 and < 9000 ? message.Date : receivedAt,
            Subject = string.IsNullOrWhiteSpace(message.Subject) ? null : message.Subject.Trim(),
            Text = text,
            Html = html,
            Attachments = attachments,
            ReferencedIds = referenced,
            RawSource = raw,
        };
    }

    /// <summary>How many ids of In-Reply-To and References are looked up: the newest are the ones that thread.</summary>
    internal const int MaxReferencedIds = 100;

    /// <summary>In-Reply-To, then References from the newest, without duplicates, at most <paramref name="max"/>. Walks
    /// the list backwards and stops at the cap with a set for the duplicates, so 50,000 References cost no more than
    /// the newest few hundred (review N3: it was a List.Contains per id over the whole header, quadratic).</summary>
    internal static List<string> ReferencedIds(string? inReplyTo, IList<string> references, int max)
    {
        var referenced = new List<string>(Math.Min(max, references.Count + 1));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (EmailIds.Normalize(inReplyTo) is { } first && seen.Add(first))
            referenced.Add(first);
        // Duplicates are skipped but still walked: bound the walk too, so a header of one id repeated is cheap.
        var walked = 0;
        for (var i = references.Count - 1; i >= 0 && referenced.Count < max && walked < max * 10; i--, walked++)
            if (EmailIds.Normalize(references[i]) is { } id && seen.Add(id))
                referenced.Add(id);
        return referenced;
    }

    /// <summary>Whether a body part is kept as an attachment: real attachments, inline images (cid:) and any non-text
    /// part; the text and HTML bodies themselves are not.</summary>
    private static bool IsStoredPart(MimePart part, string? text, string? html)
    {
        if (part.IsAttachment)
            return true;
        if (part is TextPart body && (body.IsPlain || body.IsHtml))
        {
            // A second text part that is not the body (an inline text file) is kept; the bodies are not.
            var content = body.Text;
            return content != text && content != html && body.ContentDisposition is not null;
        }
        return part is not TextPart;
    }

    private void Unpack(TnefPart tnef, List<InboundAttachment> attachments, List<string> notes, ref string? text, ref string? html)
    {
        try
        {
            var converted = tnef.ConvertToMessage();
            text ??= converted.TextBody;
            html ??= converted.HtmlBody;
            foreach (var part in converted.BodyParts.OfType<MimePart>().Where(p => p.IsAttachment || p is not TextPart))
                Add(attachments, notes, FileNameOf(part, null), part.ContentType.MimeType, Decode(part));
        }
        catch (Exception ex) when (ex is TnefException or FormatException or ArgumentException or InvalidOperationException)
        {
            // A broken winmail.dat is kept as it is: the agent can still download it.
            notes.Add($"[winmail.dat could not be unpacked: {ex.Message}]");
            Add(attachments, notes, tnef.FileName ?? "winmail.dat", "application/ms-tnef", Decode(tnef));
        }
    }

    private void Add(List<InboundAttachment> attachments, List<string> notes, string fileName, string contentType, byte[] content)
    {
        var limit = limits.Value;
        if (content.LongLength > limit.MaxAttachmentBytes)
            notes.Add($"[Attachment '{fileName}' ({content.LongLength} bytes) is over the limit of {limit.MaxAttachmentBytes} bytes; it is kept in the raw source.]");
        else if (attachments.Count >= limit.MaxAttachments)
            notes.Add($"[Attachment '{fileName}' is beyond the {limit.MaxAttachments} attachments kept per message; it is kept in the raw source.]");
        else
            attachments.Add(new InboundAttachment(fileName, contentType, content));
    }

    private static byte[] Decode(MimePart part)
    {
        using var buffer = new MemoryStream();
        try
        {
            part.Content?.DecodeTo(buffer);
        }
        catch (FormatException)
        {
            // Broken transfer encoding: keep what decoded; the raw source has all of it.
        }
        return buffer.ToArray();
    }

    /// <summary>The part's file name, else one made from its Content-Id or type, so an inline image is never nameless.</summary>
    private static string FileNameOf(MimeEntity entity, string? subject)
    {
        if (entity is MimePart { FileName: { Length: > 0 } name })
            return name;
        if (entity.ContentDisposition?.FileName is { Length: > 0 } dispositionName)
            return dispositionName;
        if (entity.ContentType.Name is { Length: > 0 } typeName)
            return typeName;
        if (subject is { Length: > 0 } && entity is MessagePart)
            return Truncate(subject, 100) + ".eml";
        var extension = MimeTypes.TryGetExtension(entity.ContentType.MimeType, out var known) ? known : ".bin";
        return (entity.ContentId is { Length: > 0 } contentId ? contentId.Split('@')[0] : entity.ContentType.MediaType) + extension;
    }

    /// <summary>An address the core accepts as an email identity (it refuses invisible and control characters, which
    /// would otherwise fail the hand-off on every retry and block the mailbox behind this mail).</summary>
    internal static bool IsAddress(string? address) => IdentityNormalizer.IsEmailAddress(address);

    private static string Truncate(string value, int max) => value.Length <= max ? value : value[..max] + "…";
}
