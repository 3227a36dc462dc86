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
    private readonly int _maxParts, _maxHeaders;

    private MimeShape(Stream stream, int maxParts, int maxHeaders) : base(stream)
    {
        _maxParts = maxParts;
        _maxHeaders = maxHeaders;
    }

    public int Parts { get; private set; }

    public int Headers { get; private set; }

    /// <summary>Reads the mail, stopping as soon as one bound is passed (the count is then bound + 1).</summary>
    public static (int Parts, int Headers) Measure(byte[] raw, int maxParts, int maxHeaders, CancellationToken cancellationToken = default)
    {
        using var stream = new MemoryStream(raw, writable: false);
        var shape = new MimeShape(stream, maxParts, maxHeaders);
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
        return (shape.Parts, shape.Headers);
    }

    protected override void OnHeaderRead(Header header, int beginLineNumber, CancellationToken cancellationToken)
    {
        if (++Headers > _maxHeaders)
            throw new BoundPassed();
    }

    protected override void OnMimePartBegin(ContentType contentType, long beginOffset, int beginLineNumber, CancellationToken cancellationToken) => Part();

    protected override void OnMultipartBegin(ContentType contentType, long beginOffset, int beginLineNumber, CancellationToken cancellationToken) => Part();

    protected override void OnMessagePartBegin(ContentType contentType, long beginOffset, int beginLineNumber, CancellationToken cancellationToken) => Part();

    private void Part()
    {
        if (++Parts > _maxParts)
            throw new BoundPassed();
    }

    private sealed class BoundPassed : Exception;
}
