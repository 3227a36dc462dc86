namespace Crm.Service.Grains;

internal static class TextRules
{
    public const int MaxSubjectLength = 200;

    /// <summary>The subject of a new ticket: the message's subject, else its first non-empty line.</summary>
    public static string SubjectFor(string? subject, string? text)
    {
        var candidate = !string.IsNullOrWhiteSpace(subject)
            ? subject
            : text?.Split('\n').Select(line => line.Trim()).FirstOrDefault(line => line.Length > 0);
        if (string.IsNullOrWhiteSpace(candidate))
            return "(no subject)";
        candidate = string.Join(' ', candidate.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return candidate.Length <= MaxSubjectLength ? candidate : candidate[..(MaxSubjectLength - 1)] + "…";
    }

    /// <summary>Tags are lower-case, trimmed, unique and sorted, so "VIP" and " vip" are one tag.</summary>
    public static List<string> NormalizeTags(IEnumerable<string> tags) =>
        [.. tags.Select(t => t.Trim().ToLowerInvariant()).Where(t => t.Length is > 0 and <= 64).Distinct().Order(StringComparer.Ordinal)];
}
