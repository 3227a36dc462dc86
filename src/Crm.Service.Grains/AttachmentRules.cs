using System.Text;
using System.Text.Unicode;

namespace Crm.Service.Grains;

/// <summary>What an attachment is called and what it really is, whatever the sender claimed.</summary>
public static class AttachmentRules
{
    private const int MaxFileNameBytes = 200;

    /// <summary>A file name safe to store and to offer as a download: no path, no control or reserved characters,
    /// not a device name, at most 200 UTF-8 bytes with the extension kept.</summary>
    public static string SanitizeFileName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
            return "attachment";
        // Keep only the last path segment, whichever separator the sender's OS uses.
        var lastSeparator = name.LastIndexOfAny(['/', '\\']);
        var candidate = name[(lastSeparator + 1)..].Normalize(NormalizationForm.FormC);
        var builder = new StringBuilder(candidate.Length);
        foreach (var rune in candidate.EnumerateRunes())
        {
            if (Rune.IsControl(rune) || rune.Value is '<' or '>' or ':' or '"' or '|' or '?' or '*' or '\u202E' or '\u202D' or '\u200E' or '\u200F'
                || Rune.GetUnicodeCategory(rune) == System.Globalization.UnicodeCategory.Format)
                builder.Append('_');
            else
                builder.Append(rune.ToString());
        }
        var cleaned = builder.ToString().Trim().Trim('.', ' ');
        if (cleaned.Length == 0)
            return "attachment";
        var stem = Path.GetFileNameWithoutExtension(cleaned);
        if (IsWindowsDeviceName(stem))
            cleaned = "_" + cleaned;
        return Truncate(cleaned);
    }

    private static bool IsWindowsDeviceName(string stem) =>
        stem.ToUpperInvariant() is "CON" or "PRN" or "AUX" or "NUL"
            or "COM1" or "COM2" or "COM3" or "COM4" or "COM5" or "COM6" or "COM7" or "COM8" or "COM9"
            or "LPT1" or "LPT2" or "LPT3" or "LPT4" or "LPT5" or "LPT6" or "LPT7" or "LPT8" or "LPT9";

    private static string Truncate(string name)
    {
        if (Encoding.UTF8.GetByteCount(name) <= MaxFileNameBytes)
            return name;
        var extension = Path.GetExtension(name);
        if (Encoding.UTF8.GetByteCount(extension) > 20)
            extension = "";
        var stem = name[..^extension.Length];
        var budget = MaxFileNameBytes - Encoding.UTF8.GetByteCount(extension);
        var builder = new StringBuilder();
        foreach (var rune in stem.EnumerateRunes())
        {
            if (Encoding.UTF8.GetByteCount(builder.ToString()) + rune.Utf8SequenceLength > budget)
                break;
            builder.Append(rune.ToString());
        }
        return builder.ToString().TrimEnd('.', ' ') + extension;
    }

    /// <summary>The content type from the leading bytes. Anything not recognised is served as
    /// application/octet-stream (or text/plain when it is valid UTF-8 text), never as the sender claimed.</summary>
    public static string SniffContentType(ReadOnlySpan<byte> content)
    {
        static bool Starts(ReadOnlySpan<byte> data, ReadOnlySpan<byte> magic) => data.StartsWith(magic);

        if (Starts(content, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])) return "image/png";
        if (Starts(content, [0xFF, 0xD8, 0xFF])) return "image/jpeg";
        if (Starts(content, "GIF87a"u8) || Starts(content, "GIF89a"u8)) return "image/gif";
        if (content.Length >= 12 && Starts(content, "RIFF"u8) && content[8..12].SequenceEqual("WEBP"u8)) return "image/webp";
        if (content.Length >= 12 && Starts(content, "RIFF"u8) && content[8..12].SequenceEqual("WAVE"u8)) return "audio/wav";
        if (Starts(content, "BM"u8) && content.Length > 14) return "image/bmp";
        if (Starts(content, "%PDF-"u8)) return "application/pdf";
        if (Starts(content, [0x50, 0x4B, 0x03, 0x04])) return "application/zip";
        if (Starts(content, [0x1F, 0x8B])) return "application/gzip";
        if (Starts(content, "OggS"u8)) return "audio/ogg";
        if (Starts(content, "ID3"u8) || Starts(content, [0xFF, 0xFB])) return "audio/mpeg";
        if (content.Length >= 12 && content[4..8].SequenceEqual("ftyp"u8)) return "video/mp4";
        if (Starts(content, [0x1A, 0x45, 0xDF, 0xA3])) return "video/webm";
        if (Starts(content, [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])) return "application/x-ole-storage";
        if (Starts(content, [0x78, 0x9F, 0x3E, 0x22])) return "application/vnd.ms-tnef";
        if (LooksLikeText(content)) return "text/plain";
        return "application/octet-stream";
    }

    /// <summary>The type an agent's file is stored and sent with (review ER16): the sniffed type, with the charset for
    /// text (sniffed text is valid UTF-8; without it a mail client reads US-ASCII and garbles "ü"), and for a zip named
    /// .docx/.xlsx/.pptx (an Office Open XML file is a zip) the Office type, so the recipient's Office opens it.</summary>
    public static string ReplyContentType(string? fileName, ReadOnlySpan<byte> content)
    {
        var sniffed = SniffContentType(content);
        if (sniffed == "text/plain")
            return "text/plain; charset=utf-8";
        if (sniffed == "application/zip")
        {
            switch (Path.GetExtension(fileName ?? "").ToLowerInvariant())
            {
                case ".docx": return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
                case ".xlsx": return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
                case ".pptx": return "application/vnd.openxmlformats-officedocument.presentationml.presentation";
            }
        }
        return sniffed;
    }

    private static bool LooksLikeText(ReadOnlySpan<byte> content)
    {
        var sample = content[..Math.Min(content.Length, 4096)];
        if (sample.IndexOf((byte)0) >= 0)
            return false;
        // A sample cut mid-character is still text: trim up to 3 trailing bytes of an incomplete sequence.
        for (var trim = 0; trim <= 3 && trim <= sample.Length; trim++)
        {
            if (Utf8.IsValid(sample[..^trim]))
                return true;
        }
        return false;
    }
}
