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

    /// <summary>Tags are lower-case, trimmed, unique and sorted, so "VIP" and " vip" are one tag.
    /// Agent input has passed <see cref="InputLimits.CheckTags"/>; anything else that slipped in is dropped, not stored.</summary>
    public static List<string> NormalizeTags(IEnumerable<string?> tags) =>
        [.. tags.OfType<string>().Select(t => t.Trim().ToLowerInvariant()).Where(t => t.Length is > 0 and <= InputLimits.MaxTagLength)
            .Distinct().Order(StringComparer.Ordinal).Take(InputLimits.MaxTagsPerEntity)];

    /// <summary>The tags of a merged customer: all of the kept customer's, then the source's while there is room,
    /// so a merge never grows a profile past the limit (the source keeps its own row and tags).</summary>
    public static List<string> MergeTags(IEnumerable<string> kept, IEnumerable<string> source)
    {
        var keptTags = NormalizeTags(kept);
        var room = InputLimits.MaxTagsPerEntity - keptTags.Count;
        return NormalizeTags(keptTags.Concat(NormalizeTags(source).Except(keptTags, StringComparer.Ordinal).Take(Math.Max(room, 0))));
    }

    /// <summary>Fills the kept customer's custom fields from the source's, without replacing any and without passing the limit.</summary>
    public static void FillCustomFields(Dictionary<string, string> kept, IReadOnlyDictionary<string, string> source)
    {
        foreach (var (key, value) in source)
        {
            if (kept.Count >= InputLimits.MaxCustomFields)
                return;
            kept.TryAdd(key, value);
        }
    }
}
