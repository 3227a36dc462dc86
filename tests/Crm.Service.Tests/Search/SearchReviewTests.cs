using Crm.Service.Search;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crm.Service.Tests.Search;

/// <summary>The search-engine fixes of the knowledge-base review (K4, K6, K8, K9, K10).</summary>
public sealed class SearchReviewTests
{
    private static SearchDocument Doc(string id, string title, string body, string language = "en") =>
        new(id, language, title, body, "public", "published", id);

    [Fact]
    public void K4_the_snippet_window_scan_grows_linearly_with_the_matches()
    {
        static long Steps(int matches)
        {
            var spans = Enumerable.Range(0, matches).Select(i => (i * 9, i * 9 + 8, "password")).ToList();
            Snippets.BestWindow(spans, Snippets.DefaultLength, out var steps);
            return steps;
        }
        var small = Steps(2_000);
        var large = Steps(20_000);

        // Ten times the matches: about ten times the work (quadratic would be a hundred).
        Assert.InRange((double)large / small, 8, 12);
    }

    [Fact]
    public void K4_a_huge_body_is_analysed_only_up_to_the_bound_for_its_snippet()
    {
        var body = string.Concat(Enumerable.Repeat("password ", 22_000));
        var calls = 0;

        var snippet = Snippets.Build(body, Analysis.BodyEn, term => { calls++; return term == "password"; });

        Assert.Contains("<mark>password</mark>", snippet, StringComparison.Ordinal);
        Assert.InRange(calls, 1, Snippets.MaxAnalyzedLength / "password ".Length + 1);
    }

    [Fact]
    public void K4_the_best_window_still_holds_the_most_distinct_words()
    {
        var text = "printer " + new string('x', 400) + " the printer driver needs a reset after the update " + new string('y', 400) + " driver";
        var matcher = new TermMatcher(Analysis.BodyEn, "printer driver reset");

        var snippet = Snippets.Build(text, Analysis.BodyEn, matcher.Matches);

        Assert.Contains("<mark>printer</mark> <mark>driver</mark> needs a <mark>reset</mark>", snippet, StringComparison.Ordinal);
    }

    [Fact]
    public void K6_a_lucene_root_shared_with_other_data_keeps_that_data()
    {
        using var root = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(root.Path, "blobs"));
        File.WriteAllText(Path.Combine(root.Path, "blobs", "x.bin"), "attachment");
        Directory.CreateDirectory(Path.Combine(root.Path, "keys"));
        var stale = Path.Combine(root.Path, "g20240101000000000000" + "0");
        Directory.CreateDirectory(stale);

        using (var index = new LuceneSearchIndex(root.Path, NullLogger<LuceneSearchIndex>.Instance))
        {
        }

        Assert.True(File.Exists(Path.Combine(root.Path, "blobs", "x.bin")));
        Assert.True(Directory.Exists(Path.Combine(root.Path, "keys")));
        Assert.False(Directory.Exists(stale), "a generation a crash left behind is still removed");
    }

    [Fact]
    public async Task K8_a_failure_closing_the_replaced_generation_leaves_the_new_one_working()
    {
        using var root = new TempDirectory();
        using var index = new LuceneSearchIndex(root.Path, NullLogger<LuceneSearchIndex>.Instance);
        await index.UpsertAsync([Doc("old", "Old printer", "Old text")]);
        index.BeforeRetire = () => throw new UnauthorizedAccessException("simulated: the old generation cannot be closed");

        await using (var rebuild = await index.BeginRebuildAsync())
        {
            await rebuild.AddAsync([Doc("new", "New printer", "New text")]);
            await rebuild.CompleteAsync();
        }
        await index.UpsertAsync([Doc("later", "Later printer", "Later text")]);

        var hits = await index.SearchAsync(new SearchQuery("printer"));
        Assert.Equal(["later", "new"], hits.Hits.Select(h => h.Id).Order());
    }

    [Fact]
    public async Task K9_a_reindex_of_long_chinese_articles_fits_the_clusters_request_limit()
    {
        await using var server = await FakeElasticsearch.StartAsync();
        server.MaxContentLength = 1024 * 1024;
        var index = new ElasticsearchIndex(new HttpClient(), new ElasticsearchOptions { Url = server.Url, Alias = "test-kb", MaxBulkBytes = 512 * 1024 },
            NullLogger<ElasticsearchIndex>.Instance);
        var body = string.Concat(Enumerable.Repeat("打印机无法连接网络时请重新启动路由器。", 500));
        var documents = Enumerable.Range(0, 40).Select(i => Doc($"a{i}", $"打印机 {i}", body, "zh-CN")).ToList();

        await using (var rebuild = await index.BeginRebuildAsync())
        {
            await rebuild.AddAsync(documents);
            await rebuild.CompleteAsync();
        }
        await index.UpsertAsync(documents);

        Assert.Equal(40, await index.CountAsync());
        Assert.True(server.Requests.Count(r => r.Contains("/_bulk", StringComparison.Ordinal)) > 2, "the batch was split");
        Assert.Contains(server.Requests, r => r.StartsWith("POST /test-kb/_bulk", StringComparison.Ordinal) && r.Contains("require_alias=true", StringComparison.Ordinal));
    }

    [Fact]
    public void K10_elasticsearch_gets_the_same_bounded_terms_as_lucene()
    {
        var text = string.Join(' ', Enumerable.Range(0, 90).Select(i => "word" + (char)('a' + i % 26) + (char)('a' + i / 26)));

        var request = ElasticsearchIndex.BuildSearch(new SearchQuery(text));

        foreach (var clause in request["query"]!["bool"]!["should"]!.AsArray())
        {
            var query = clause!["multi_match"]!["query"]!.GetValue<string>();
            Assert.True(Analysis.Tokens(Analysis.TitleEn, query).Count <= TermMatcher.MaxTerms, $"{Analysis.Tokens(Analysis.TitleEn, query).Count} terms sent");
        }
        Assert.Equal(SearchQuery.MaxSkip, ElasticsearchIndex.BuildSearch(new SearchQuery("x") { Skip = int.MaxValue })["from"]!.GetValue<int>());
    }
}
