using Lucene.Net.Analysis;
using Lucene.Net.Analysis.Cjk;
using Lucene.Net.Analysis.Core;
using Lucene.Net.Analysis.En;
using Lucene.Net.Analysis.Miscellaneous;
using Lucene.Net.Analysis.TokenAttributes;
using Lucene.Net.Util;

namespace Crm.Service.Search;

/// <summary>
/// Per-language analysis, shared by the Lucene index, the snippets and the Elasticsearch test double. English text
/// goes to the "_en" fields (standard tokenizer, possessives, lower case, stop words, Porter stemming: "printers"
/// finds "printer"); Chinese (zh-CN and zh-TW) to the "_zh" fields (CJK width folding, lower case, overlapping
/// bigrams: "打印机" is "打印" "印机", so any two adjacent characters of a word match without a dictionary). The
/// Elasticsearch template declares the same pair as the built-in "english" analyzer and a custom "cjk" chain.
/// </summary>
public static class Analysis
{
    public const LuceneVersion Version = LuceneVersion.LUCENE_48;

    public const string TitleEn = "title_en";
    public const string BodyEn = "body_en";
    public const string TitleZh = "title_zh";
    public const string BodyZh = "body_zh";

    /// <summary>Title matches count this much more than body matches.</summary>
    public const float TitleBoost = 3f;

    public static readonly Analyzer English = new EnglishAnalyzer(Version);
    public static readonly Analyzer Cjk = new CJKAnalyzer(Version);

    public static string TitleField(string family) => family == "en" ? TitleEn : TitleZh;

    public static string BodyField(string family) => family == "en" ? BodyEn : BodyZh;

    public static Analyzer ForField(string field) => field.EndsWith("_en", StringComparison.Ordinal) ? English : Cjk;

    /// <summary>Index-time analyzer: the text fields by their suffix, everything else (ids, filters) untouched.</summary>
    public static Analyzer PerField() => new PerFieldAnalyzerWrapper(new KeywordAnalyzer(), new Dictionary<string, Analyzer>
    {
        [TitleEn] = English, [BodyEn] = English, [TitleZh] = Cjk, [BodyZh] = Cjk,
    });

    /// <summary>The tokens of <paramref name="text"/> as <paramref name="field"/> indexes them, with their character offsets.</summary>
    public static List<(string Term, int Start, int End)> Tokens(string field, string text)
    {
        var tokens = new List<(string, int, int)>();
        using var stream = ForField(field).GetTokenStream(field, new StringReader(text));
        var term = stream.AddAttribute<ICharTermAttribute>();
        var offset = stream.AddAttribute<IOffsetAttribute>();
        stream.Reset();
        while (stream.IncrementToken())
            tokens.Add((term.ToString(), offset.StartOffset, offset.EndOffset));
        stream.End();
        return tokens;
    }

    /// <summary>Elasticsearch's "fuzziness": AUTO: no edit below 3 characters, one up to 5, two above.</summary>
    public static int AutoEdits(string term) => term.Length < 3 ? 0 : term.Length <= 5 ? 1 : 2;
}

/// <summary>Which indexed terms a query matches in one field: exact terms, the last word as a prefix, and fuzzy
/// terms within <see cref="Analysis.AutoEdits"/>. Used to mark words in snippets exactly as the query matched them.</summary>
public sealed class TermMatcher
{
    public const int FuzzyPrefixLength = 1;
    public const int MaxTerms = 64;

    public TermMatcher(string field, string text)
    {
        Field = field;
        // Bounded: a long ticket text as a query must not exceed Lucene's clause limit (1024) across four fields.
        Terms = [.. Analysis.Tokens(field, text).Select(t => t.Term).Distinct(StringComparer.Ordinal).Take(MaxTerms)];
        // The word being typed: its raw lower-case form, since the stemmer would cut "printi" to "printi", not "print".
        var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var last = words.Length > 0 ? words[^1].ToLowerInvariant().Trim('"', '\'', '?', '!', '.', ',', ';', ':', '(', ')') : "";
        Prefix = last.Length >= 3 && last.All(char.IsAsciiLetterOrDigit) ? last : null;
        Fuzzy = field.EndsWith("_en", StringComparison.Ordinal)
            ? [.. Terms.Where(t => Analysis.AutoEdits(t) > 0 && t.All(char.IsAsciiLetter)).Take(MaxTerms / 4)]
            : [];
        _terms = new HashSet<string>(Terms, StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
    }

    // Looked up by the analyzer's term buffer: snippets test every token of a body without making a string of it.
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _terms;

    public string Field { get; }
    public IReadOnlyList<string> Terms { get; }
    public string? Prefix { get; }
    public IReadOnlyList<string> Fuzzy { get; }

    public bool IsEmpty => Terms.Count == 0 && Prefix is null;

    public bool Matches(string term) => Matches(term.AsSpan());

    public bool Matches(ReadOnlySpan<char> term)
    {
        if (_terms.Contains(term))
            return true;
        if (Prefix is not null && term.StartsWith(Prefix, StringComparison.Ordinal))
            return true;
        foreach (var f in Fuzzy)
            if (term.Length > FuzzyPrefixLength && term[0] == f[0] && WithinEdits(f, term, Analysis.AutoEdits(f)))
                return true;
        return false;
    }

    /// <summary>Damerau-free Levenshtein distance ≤ <paramref name="max"/>, with an early exit.</summary>
    public static bool WithinEdits(string a, string b, int max) => WithinEdits(a, b.AsSpan(), max);

    public static bool WithinEdits(string a, ReadOnlySpan<char> b, int max)
    {
        if (Math.Abs(a.Length - b.Length) > max)
            return false;
        // Tokens are at most 255 characters (StandardTokenizer), so the rows fit on the stack.
        Span<int> previous = b.Length < 512 ? stackalloc int[b.Length + 1] : new int[b.Length + 1];
        Span<int> current = b.Length < 512 ? stackalloc int[b.Length + 1] : new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
            previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            var rowMin = current[0];
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
                rowMin = Math.Min(rowMin, current[j]);
            }
            if (rowMin > max)
                return false;
            var swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.Length] <= max;
    }
}

/// <summary>Highlighted snippets built from the stored plain text and the analyzer's offsets (Lucene.Net's
/// Highlighter package is not available here): the window of about <c>length</c> characters holding the most
/// distinct matched words, HTML-encoded, matches wrapped in &lt;mark&gt;.</summary>
public static class Snippets
{
    public const int DefaultLength = 160;

    /// <summary>Only this much of a body is analysed for a snippet: a body may hold 200,000 characters, and a snippet
    /// is built for every hit of every search. Matches further in are found by the search but not highlighted.</summary>
    public const int MaxAnalyzedLength = 20_000;

    /// <summary>Whether a token (the analyzer's term buffer) is one the query matched.</summary>
    private delegate bool TermPredicate(ReadOnlySpan<char> term);

    public static string Build(string text, string field, Func<string, bool> matches, int length = DefaultLength) =>
        BuildCore(text, field, term => matches(term.ToString()), length);

    public static string Build(string text, string field, TermMatcher matcher, int length = DefaultLength) =>
        BuildCore(text, field, matcher.Matches, length);

    private static string BuildCore(string text, string field, TermPredicate matches, int length)
    {
        if (string.IsNullOrEmpty(text))
            return "";
        var analyzedLength = text.Length <= MaxAnalyzedLength ? text.Length
            : char.IsHighSurrogate(text[MaxAnalyzedLength - 1]) ? MaxAnalyzedLength - 1 : MaxAnalyzedLength;
        // Tokens are tested on the analyzer's buffer; only matched ones become strings (a body has hundreds of tokens
        // per hit, ten hits per search: allocating each was most of a search's garbage).
        var spans = new List<(int Start, int End, string Term)>();
        using (var stream = Analysis.ForField(field).GetTokenStream(field, new SpanReader(text, analyzedLength)))
        {
            var term = stream.AddAttribute<ICharTermAttribute>();
            var offset = stream.AddAttribute<IOffsetAttribute>();
            stream.Reset();
            while (stream.IncrementToken())
            {
                var buffer = term.Buffer.AsSpan(0, term.Length);
                if (matches(buffer))
                    spans.Add((offset.StartOffset, offset.EndOffset, buffer.ToString()));
            }
            stream.End();
        }
        if (spans.Count == 0)
            return Encode(text, 0, Math.Min(text.Length, length), text.Length > length);

        var (bestStart, _) = BestWindow(spans, length, out _);
        var windowEnd = Math.Min(text.Length, bestStart + length);
        if (bestStart > 0 && char.IsLowSurrogate(text[bestStart]))
            bestStart--;
        if (windowEnd < text.Length && char.IsHighSurrogate(text[windowEnd - 1]))
            windowEnd++;

        // Overlapping spans (CJK bigrams "打印" and "印机") become one mark.
        var merged = new List<(int Start, int End)>();
        foreach (var (start, end, _) in spans.Where(s => s.Start >= bestStart && s.End <= windowEnd).OrderBy(s => s.Start))
        {
            if (merged.Count > 0 && start <= merged[^1].End)
                merged[^1] = (merged[^1].Start, Math.Max(merged[^1].End, end));
            else
                merged.Add((start, end));
        }
        var html = new System.Text.StringBuilder(length + 40);
        if (bestStart > 0)
            html.Append('…');
        var at = bestStart;
        foreach (var (start, end) in merged)
        {
            html.Append(System.Net.WebUtility.HtmlEncode(text[at..start]));
            html.Append("<mark>").Append(System.Net.WebUtility.HtmlEncode(text[start..end])).Append("</mark>");
            at = end;
        }
        html.Append(System.Net.WebUtility.HtmlEncode(text[at..windowEnd]));
        if (windowEnd < text.Length)
            html.Append('…');
        return html.ToString();
    }

    /// <summary>
    /// The window of <paramref name="length"/> characters, starting a little before a match, that holds the most
    /// distinct matched terms. One pass with two pointers over the spans (in text order) and a count per term in the
    /// window: linear in the number of matches, where comparing every window with every span was quadratic.
    /// <paramref name="steps"/> counts pointer moves (tests check the growth).
    /// </summary>
    internal static (int Start, int Distinct) BestWindow(IReadOnlyList<(int Start, int End, string Term)> spans, int length, out long steps)
    {
        steps = 0;
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        int left = 0, right = 0, bestStart = 0, best = -1;
        foreach (var anchor in spans)
        {
            var start = Math.Max(0, anchor.Start - length / 5);
            // Spans before the window's start leave it…
            for (; left < right && spans[left].Start < start; left++, steps++)
                if (--counts[spans[left].Term] == 0)
                    counts.Remove(spans[left].Term);
            if (right < left)
                right = left;
            for (; left == right && left < spans.Count && spans[left].Start < start; left++, right++, steps++)
            {
            }
            // …and those that end inside it join (window starts only move forward, as the anchors do).
            for (; right < spans.Count && spans[right].End <= start + length; right++, steps++)
                counts[spans[right].Term] = counts.GetValueOrDefault(spans[right].Term) + 1;
            if (counts.Count > best)
                (best, bestStart) = (counts.Count, start);
        }
        return (bestStart, best);
    }

    private static string Encode(string text, int start, int end, bool more) =>
        System.Net.WebUtility.HtmlEncode(text[start..end]) + (more ? "…" : "");
}

/// <summary>A reader over the first <c>length</c> characters of a string, without copying them into a new string.</summary>
internal sealed class SpanReader(string text, int length) : TextReader
{
    private int _at;

    public override int Peek() => _at < length ? text[_at] : -1;

    public override int Read() => _at < length ? text[_at++] : -1;

    public override int Read(char[] buffer, int index, int count)
    {
        var n = Math.Min(count, length - _at);
        if (n <= 0)
            return 0;
        text.CopyTo(_at, buffer, index, n);
        _at += n;
        return n;
    }
}
