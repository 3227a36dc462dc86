using System.Text.RegularExpressions;

namespace Crm.Connectors.Email;

/// <summary>
/// The new part of a reply, for display: the text before the quoted earlier mail ("On … wrote:", an Outlook header
/// block, "-----Original Message-----", a trailing "&gt;" quote) and before the signature ("-- ", "Sent from my …").
/// The full text is always kept; when trimming would leave nothing, the full text is the display text.
/// </summary>
public static partial class ReplyTrimmer
{
    /// <summary>How much of a text is looked at: the new part of a reply is at its top, and a stranger's mail may be
    /// megabytes of crafted quote headers (review RC1); the rest stays behind the console's toggle.</summary>
    public const int MaxChars = 64 * 1024;

    /// <summary>Linear in the text: each line is looked at a bounded number of times, with no recursion.</summary>
    public static string Trim(string text)
    {
        var whole = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        var normalized = whole.Length > MaxChars ? whole[..MaxChars] : whole;
        var lines = normalized.Split('\n');
        // restIsQuote[i]: every line from i on is a "> " line or blank (a quote that runs to the end).
        var restIsQuote = new bool[lines.Length + 1];
        restIsQuote[lines.Length] = true;
        for (var i = lines.Length - 1; i >= 0; i--)
            restIsQuote[i] = IsQuoteOrBlank(lines[i]) && restIsQuote[i + 1];
        var start = 0;
        while (true)
        {
            var end = lines.Length;
            for (var i = start; i < lines.Length; i++)
            {
                if (StartsQuote(lines, i, restIsQuote) || StartsSignature(lines[i]))
                {
                    end = i;
                    break;
                }
            }
            // A long text with no quote or signature in its first MaxChars is shown whole, not cut (review RD4).
            if (start == 0 && end == lines.Length && whole.Length > normalized.Length)
                return whole.Trim();
            var kept = string.Join("\n", lines[start..end]).Trim();
            if (kept.Length > 0)
                return kept;
            // Bottom-posted: the quote comes first and the answer below it.
            var below = BelowLeadingQuote(lines, end);
            if (below < 0)
                return string.Join("\n", lines[start..]).Trim();
            start = below;
        }
    }

    private static bool IsQuoteOrBlank(string line) => line.TrimStart().StartsWith('>') || string.IsNullOrWhiteSpace(line);

    /// <summary>Whether <paramref name="trimmed"/> (from <see cref="Trim"/>) is the whole of <paramref name="text"/>, line
    /// endings and surrounding blank space aside: then there is nothing to show behind a toggle.</summary>
    public static bool SameText(string trimmed, string text) =>
        string.Equals(trimmed, text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n').Trim(), StringComparison.Ordinal);

    /// <summary>The first line after a quote that opens the mail ("On … wrote:" and its "&gt;" lines), or -1.</summary>
    private static int BelowLeadingQuote(string[] lines, int start)
    {
        var i = start;
        while (i < lines.Length && i < start + 3 && !lines[i].TrimStart().StartsWith('>'))
            i++;
        if (i == lines.Length || !lines[i].TrimStart().StartsWith('>'))
            return -1;
        while (i < lines.Length && IsQuoteOrBlank(lines[i]))
            i++;
        return i < lines.Length ? i : -1;
    }

    private static bool StartsQuote(string[] lines, int i, bool[] restIsQuote)
    {
        var line = lines[i].Trim();
        if (OriginalMessage().IsMatch(line) || (line.Length >= 20 && line.All(c => c == '_')))
            return true;
        // "On Tue, Apr 3, 2012 at 4:19 PM, bob <bob@example.com> wrote:" is often wrapped over two or three lines.
        // Chinese clients: "… 于 2026年11月23日 10:00 写道：" or "在 … 写道：" on one line.
        if (ChineseQuoteHeader().IsMatch(line))
            return true;
        if (QuoteHeaderStart().IsMatch(line))
        {
            var joined = line;
            for (var j = i; j < Math.Min(lines.Length, i + 3); j++)
            {
                if (j > i)
                    joined += " " + lines[j].Trim();
                if (QuoteHeaderEnd().IsMatch(joined))
                    return true;
            }
        }
        // An Outlook header block: "From: …" followed within a few lines by "Sent:"/"Date:" and "To:"/"Subject:".
        if (HeaderFrom().IsMatch(line))
        {
            var next = lines.AsSpan(i + 1, Math.Min(5, lines.Length - i - 1)).ToArray().Select(l => l.Trim()).ToList();
            if (next.Any(l => HeaderDate().IsMatch(l)) && next.Any(l => HeaderOther().IsMatch(l)))
                return true;
        }
        // A quote that runs to the end (blank lines aside): the earlier mail, quoted below the answer.
        return line.StartsWith('>') && restIsQuote[i];
    }

    private static bool StartsSignature(string line) =>
        line is "-- " or "--" || SentFrom().IsMatch(line.Trim());

    [GeneratedRegex(@"^(On|Am|Le|El|Il|Op|Em|W dniu|Den|På)\s.{4,}", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex QuoteHeaderStart();

    [GeneratedRegex(@"^.{4,300}写道\s*[:：]\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex ChineseQuoteHeader();

    [GeneratedRegex(@"(wrote|schrieb|a écrit|escribió|ha scritto|schreef|escreveu|napisał|skrev)\s*:\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex QuoteHeaderEnd();

    [GeneratedRegex(@"^-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|Forwarded message)\s*-{2,}", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex OriginalMessage();

    [GeneratedRegex(@"^\*?(From|Von|De|Van|Da)\s*:\*?\s", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex HeaderFrom();

    [GeneratedRegex(@"^\*?(Sent|Date|Gesendet|Datum|Envoyé|Enviado|Verzonden)\s*:", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex HeaderDate();

    [GeneratedRegex(@"^\*?(To|Subject|An|Betreff|À|Objet|Para|Asunto|Aan|Onderwerp)\s*:", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex HeaderOther();

    [GeneratedRegex(@"^(Sent from my |Sent from Mail for|Get Outlook for |Sent with Sparrow|Von meinem .* gesendet|Envoyé de mon )", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SentFrom();
}
