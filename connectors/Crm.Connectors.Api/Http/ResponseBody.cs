using System.Text;

namespace Crm.Connectors.Api.Http;

/// <summary>Reads a bounded prefix of a response body: a bridge, or whatever answers at its address, decides how
/// much it sends, so we decide how much we read.</summary>
internal static class ResponseBody
{
    private const int ExcerptChars = 200;

    /// <summary>The first <paramref name="limit"/> bytes of <paramref name="body"/> at most (all of it when shorter);
    /// never asks the stream for more than is still wanted.</summary>
    public static async Task<byte[]> ReadAsync(Stream body, int limit, CancellationToken cancellationToken)
    {
        var buffer = new byte[Math.Min(limit, 8 * 1024)];
        var length = 0;
        while (length < limit)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, Math.Min(limit, buffer.Length * 2));
            var read = await body.ReadAsync(buffer.AsMemory(length, Math.Min(buffer.Length, limit) - length), cancellationToken);
            if (read == 0)
                break;
            length += read;
        }
        return buffer[..length];
    }

    /// <summary>A short, single-line, printable excerpt of an answer, for a failure reason.</summary>
    public static string Excerpt(byte[] body) => Excerpt(Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, ExcerptChars * 4)));

    public static string Excerpt(string text)
    {
        var excerpt = new StringBuilder(Math.Min(text.Length, ExcerptChars));
        foreach (var c in text)
        {
            if (excerpt.Length == ExcerptChars)
                return excerpt.Append('…').ToString().Trim();
            excerpt.Append(char.IsControl(c) ? ' ' : c);
        }
        return excerpt.ToString().Trim();
    }
}
