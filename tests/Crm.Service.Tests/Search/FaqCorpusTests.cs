using System.Text.Json;
using Crm.Service.Search;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crm.Service.Tests.Search;

/// <summary>Search quality on the bilingual FAQ corpus (Corpora/kb/faq-bilingual): answers indexed, questions as
/// queries. The floors sit just under what the benchmark measured (docs/benchmarks.md), so a regression in analysis
/// (losing the CJK bigrams or the stemmer) fails here.</summary>
public sealed class FaqCorpusTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("crm-faq-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Monolingual_recall_at_5_holds_for_english_and_chinese()
    {
        var corpus = Path.Combine(AppContext.BaseDirectory, "Corpora", "kb", "faq-bilingual");
        var faqs = File.ReadLines(Path.Combine(corpus, "faq.jsonl")).Select(l => JsonSerializer.Deserialize<JsonElement>(l)).ToDictionary(
            e => e.GetProperty("id").GetString()!,
            e => (Lang: e.GetProperty("lang").GetString()!, Question: e.GetProperty("question").GetString()!, Answer: e.GetProperty("answer").GetString()!));
        using var index = new LuceneSearchIndex(_folder, NullLogger<LuceneSearchIndex>.Instance);
        await index.UpsertAsync([.. faqs.Select(f => new SearchDocument(f.Key, f.Value.Lang == "en" ? "en" : "zh-CN", "", f.Value.Answer, "public", "published"))]);

        var found = new Dictionary<string, (int Hits, int Total)> { ["en"] = (0, 0), ["zh"] = (0, 0) };
        foreach (var pair in File.ReadLines(Path.Combine(corpus, "qrels_monolingual.tsv")).Skip(1).Select(l => l.Split('\t')))
        {
            var (lang, question, _) = faqs[pair[0]];
            var top = (await index.SearchAsync(new SearchQuery(question) { Take = 5 })).Hits.Select(h => h.Id);
            var (hits, total) = found[lang];
            found[lang] = (hits + (top.Contains(pair[1]) ? 1 : 0), total + 1);
        }

        var en = (double)found["en"].Hits / found["en"].Total;
        var zh = (double)found["zh"].Hits / found["zh"].Total;
        Assert.True(en >= 0.7, $"English recall@5 {en:F3}");
        Assert.True(zh >= 0.7, $"Chinese recall@5 {zh:F3}");
    }
}
