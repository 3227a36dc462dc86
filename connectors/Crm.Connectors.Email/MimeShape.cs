using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// Counts a mail's MIME entities and header fields with MimeKit's own streaming reader (nothing is kept), stopping at
/// the bounds: a cheap look before <see cref="MimeMessage.Load(ParserOptions, Stream, CancellationToken)"/> builds an
/// object per part (about 90 bytes of memory per byte of tiny parts) and per header field (about 240 bytes each).
/// Because it is MimeKit's parser, it sees what MimeKit would build: the headers of an attached message
/// (message/rfc822, the parts of a multipart/digest) count, and a text line that merely starts with "--" does not.
/// </summary>
internal sealed class MimeShape : MimeReader
{
    private readonly int _maxParts, _maxHeaders, _maxFieldBytes;

    private MimeShape(Stream stream, int maxParts, int maxHeaders, int maxFieldBytes) : base(stream)
    {
        _maxParts = maxParts;
        _maxHeaders = maxHeaders;
        _maxFieldBytes = maxFieldBytes;
    }

    public int Parts { get; private set; }

    public int Headers { get; private set; }

    /// <summary>The name of the first header field longer than the field bound, or null.</summary>
    public string? LongField { get; private set; }

    /// <summary>Whether <see cref="LongField"/> names an address field that is over the bound only together with the
    /// mail's other address fields (each one alone is under it).</summary>
    public bool LongInTotal { get; private set; }

    /// <summary>What <see cref="Measure"/> found: the counts, and the first over-long header field (null when none),
    /// and whether it is long only together with the entity's other address fields.</summary>
    public readonly record struct Counts(int Parts, int Headers, string? LongField, bool LongInTotal = false)
    {
        public void Deconstruct(out int parts, out int headers) => (parts, headers) = (Parts, Headers);
    }

    /// <summary>Reads the mail, stopping as soon as one bound is passed (the count is then bound + 1). One header field
    /// longer than <paramref name="maxFieldBytes"/> stops it too: a From of millions of addresses is one field, and
    /// MimeKit would build an object per address (review ER1).</summary>
    public static Counts Measure(byte[] raw, int maxParts, int maxHeaders, CancellationToken cancellationToken = default, int maxFieldBytes = int.MaxValue)
    {
        using var stream = new MemoryStream(raw, writable: false);
        var shape = new MimeShape(stream, maxParts, maxHeaders, maxFieldBytes);
        try
        {
            shape.ReadMessage(cancellationToken);
        }
        catch (BoundPassed)
        {
        }
        catch (FormatException)
        {
            // Not a MIME message: the parser proper says so with its reason.
        }
        return new Counts(shape.Parts, shape.Headers, shape.LongField, shape.LongInTotal);
    }

    protected override void OnHeadersBegin(long beginOffset, int beginLineNumber, CancellationToken cancellationToken)
    {
        _encoded = false;
    }

    // MimeKit merges every field of one kind (200 From fields of 250 KB each) into one address list when it loads the
    // mail, so address fields are bounded together, not only one by one (review LD4); over the whole mail, because each
    // attached message/rfc822 has its own headers and a count per entity would let 190 attached messages through (IN1).
    private static readonly HashSet<HeaderId> AddressFields =
    [
        HeaderId.From, HeaderId.Sender, HeaderId.ReplyTo, HeaderId.To, HeaderId.Cc, HeaderId.Bcc,
        HeaderId.ResentFrom, HeaderId.ResentSender, HeaderId.ResentReplyTo, HeaderId.ResentTo, HeaderId.ResentCc, HeaderId.ResentBcc,
    ];

    private long _addressBytes;

    protected override void OnHeaderRead(Header header, int beginLineNumber, CancellationToken cancellationToken)
    {
        if (header.RawValue.Length > _maxFieldBytes)
            Long(header, inTotal: false);
        if (AddressFields.Contains(header.Id) && (_addressBytes += header.RawValue.Length) > _maxFieldBytes)
            Long(header, inTotal: true);
        if (header.Id == HeaderId.ContentTransferEncoding)
            // Every encoding but the identity ones hides the decoded text from this reader (uuencode too: one line holds
            // 45 bytes, so counting its lines would pass the bound ~15 times late, review ER13).
            _encoded = header.Value.Trim().ToLowerInvariant() is not ("" or "7bit" or "8bit" or "binary");
        Count();
    }

    private void Long(Header header, bool inTotal)
    {
        LongField = header.Field.Length <= 64 ? header.Field : header.Field[..64];
        LongInTotal = inTotal;
        throw new BoundPassed();
    }

    private void Count()
    {
        if (++Headers > _maxHeaders)
            throw new BoundPassed();
    }

    // A part whose body is header groups (a DSN's message/delivery-status, an MDN, text/rfc822-headers) is a plain part
    // to this reader, but MimeKit builds a Header object per field when BounceReport reads it (StatusGroups) and when the
    // mapper reads the returned headers: its fields count like the mail's own (review N1).
    private static readonly HashSet<string> HeaderGroupTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        "message/delivery-status", "message/global-delivery-status", "message/disposition-notification",
        "message/global-disposition-notification", "text/rfc822-headers", "message/global-headers",
    };

    private bool _encoded, _inHeaderGroups, _atLineStart;
    private long _encodedBytes;

    protected override void OnMimePartBegin(ContentType contentType, long beginOffset, int beginLineNumber, CancellationToken cancellationToken)
    {
        _inHeaderGroups = HeaderGroupTypes.Contains(contentType.MimeType);
        Part();
    }

    protected override void OnMimePartContentBegin(long beginOffset, int beginLineNumber, CancellationToken cancellationToken)
    {
        _atLineStart = true;
        _encodedBytes = 0;
    }

    protected override void OnMimePartContentRead(byte[] content, int startIndex, int count, CancellationToken cancellationToken)
    {
        if (!_inHeaderGroups)
            return;
        for (var i = startIndex; i < startIndex + count; i++)
        {
            var b = content[i];
            if (_encoded)
            {
                // Encoded: the decoded text is not seen here. A field takes at least three bytes ("a:\n") and encoding
                // never makes text shorter, so one count per three bytes is an upper bound.
                if (_encodedBytes++ % 3 == 0)
                    Count();
                continue;
            }
            // A field starts at a line that is neither blank nor a folded continuation.
            if (_atLineStart && b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
                Count();
            _atLineStart = b == (byte)'\n';
        }
    }

    protected override void OnMimePartEnd(ContentType contentType, long beginOffset, int beginLineNumber, long headersEndOffset, long endOffset, int lines, CancellationToken cancellationToken) =>
        _inHeaderGroups = false;

    protected override void OnMultipartBegin(ContentType contentType, long beginOffset, int beginLineNumber, CancellationToken cancellationToken) => Part();

    protected override void OnMessagePartBegin(ContentType contentType, long beginOffset, int beginLineNumber, CancellationToken cancellationToken) => Part();

    private void Part()
    {
        if (++Parts > _maxParts)
            throw new BoundPassed();
    }

    private sealed class BoundPassed : Exception;
}
