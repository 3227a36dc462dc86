using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Search;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>
/// Changes made while a reindex fills the new index reach it through the feed cursor, which the reindex moves back
/// durably before the swap (review K2); and an index that was not written for a while (another folder or engine was
/// configured) is caught up from its own cursor (review K7).
/// </summary>
public sealed class ReindexCatchUpTests
{
    /// <summary>What the wrapped index does; one test at a time uses it (the class's tests run one after another).</summary>
    private sealed class Faults
    {
        public TaskCompletionSource Fill { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        /// <summary>The rebuild has read its first page from the store and waits to add it.</summary>
        public TaskCompletionSource Read { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Swapped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        /// <summary>After the swap every index write fails: the process as good as died right after the swap.</summary>
        public bool DieAfterSwap;
        /// <summary>After the swap this many index writes fail (an Elasticsearch 429, a timeout).</summary>
        public int FailuresAfterSwap;
        public volatile bool Dead;

        public void Write()
        {
            if (Dead)
                throw new IOException("simulated: the process died after the swap");
            if (Swapped.Task.IsCompleted && Interlocked.Decrement(ref FailuresAfterSwap) >= 0)
                throw new SearchUnavailableException("simulated: Elasticsearch answered 429");
        }
    }

    private sealed class FaultyIndex(ISearchIndex inner, Faults faults) : ISearchIndex, IDisposable
    {
        public void Dispose() => (inner as IDisposable)?.Dispose();
        public string Engine => inner.Engine;
        public string Identity => inner.Identity;
        public Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default)
        {
            faults.Write();
            return inner.UpsertAsync(documents, cancellationToken);
        }
        public Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default)
        {
            faults.Write();
            return inner.DeleteAsync(ids, cancellationToken);
        }
        public Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default) => inner.SearchAsync(query, cancellationToken);
        public Task<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);
        public Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default) => inner.AppliedSequenceAsync(cancellationToken);
        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default)
        {
            faults.Write();
            return inner.MarkAppliedAsync(sequence, cancellationToken);
        }
        public async Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default) =>
            new GatedRebuild(await inner.BeginRebuildAsync(cancellationToken), faults);
    }

    /// <summary>A rebuild that waits before filling (so a test edits meanwhile) and marks the swap.</summary>
    private sealed class GatedRebuild(IIndexRebuild inner, Faults faults) : IIndexRebuild
    {
        public async Task AddAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default)
        {
            faults.Read.TrySetResult();
            await faults.Fill.Task.WaitAsync(cancellationToken);
            await inner.AddAsync(documents, cancellationToken);
        }
        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => inner.MarkAppliedAsync(sequence, cancellationToken);
        public async Task CompleteAsync(CancellationToken cancellationToken = default)
        {
            await inner.CompleteAsync(cancellationToken);
            if (faults.DieAfterSwap)
                faults.Dead = true;
            faults.Swapped.TrySetResult();
        }
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private static CrmApp FaultyApp(string data, Faults faults) => new(data, services: s =>
    {
        var engine = s.Last(d => d.ServiceType == typeof(ISearchIndex) && !d.IsKeyedService);
        s.Remove(engine);
        s.AddSingleton<ISearchIndex>(p => new FaultyIndex((ISearchIndex)engine.ImplementationFactory!(p), faults));
    });

    private static HttpClient Visitor(CrmApp app) => app.CreateClient();

    private static async Task<bool> HelpFindsAsync(CrmApp app, string word, string title)
    {
        using var visitor = Visitor(app);
        var html = await visitor.GetStringAsync("/help/en/search?q=" + word);
        return html.Contains(title, StringComparison.Ordinal);
    }

    /// <summary>Publishes A, starts a reindex that holds after reading the store, unpublishes A while it holds and waits until
    /// the feed's consumer handled that (into the old index), then lets the rebuild fill and swap.</summary>
    private static async Task<string> UnpublishDuringReindexAsync(CrmApp app, Faults faults)
    {
        using var editor = await EditorAsync(app);
        using var agent = await app.AgentAsync();
        var seed = await PublishAsync(editor, await CreateAsync(editor, "Seed", "Seed article."));
        var article = await PublishAsync(editor, await CreateAsync(editor, "Zebrafish quarantine", "The zebrafish tank procedure."));
        await WaitForHitsAsync(agent, "zebrafish", Id(article));

        using var admin = app.Admin();
        Assert.Equal(System.Net.HttpStatusCode.Accepted, (await admin.PostAsync("/api/v1/admin/kb/reindex", null)).StatusCode);
        // The rebuild has copied A from the store while it was still published.
        await faults.Read.Task.WaitAsync(TimeSpan.FromSeconds(30));
        (await editor.PostAsJsonAsync($"/api/v1/kb/articles/{Id(article)}/unpublish", new { version = Version(article) })).EnsureSuccessStatusCode();
        var head = await app.QueryAsync(db => Task.FromResult(db.Changes.Max(c => c.Sequence)));
        var status = app.Services.GetRequiredService<ChangeFeedStatus>();
        await Eventually.WaitForAsync(() => Task.FromResult(status.Consumers.Single(c => c.Name.StartsWith("search-articles", StringComparison.Ordinal)).Cursor),
            cursor => cursor >= head, what: "the search consumer handling the unpublish (into the old index)");
        Assert.False(await HelpFindsAsync(app, "zebrafish", "Zebrafish quarantine"));

        faults.Fill.SetResult();
        await faults.Swapped.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return Id(article);
    }

    [Fact]
    public async Task An_article_unpublished_during_a_reindex_is_not_public_after_a_crash_right_after_the_swap()
    {
        using var data = new TempDirectory();
        var faults = new Faults { DieAfterSwap = true };
        await using (var first = FaultyApp(data.Path, faults))
            await UnpublishDuringReindexAsync(first, faults);

        await using var second = new CrmApp(data.Path);
        using var agent = await second.AgentAsync("agent-2");
        // The rebuilt index was filled before the unpublish; only the rewound cursor can still carry it there.
        await WaitForHitsAsync(agent, "zebrafish");
        Assert.False(await HelpFindsAsync(second, "zebrafish", "Zebrafish quarantine"));
    }

    [Fact]
    public async Task An_index_write_failing_after_the_swap_is_retried_not_dropped()
    {
        using var data = new TempDirectory();
        var faults = new Faults { FailuresAfterSwap = 1 };
        await using var app = FaultyApp(data.Path, faults);
        await UnpublishDuringReindexAsync(app, faults);

        using var agent = await app.AgentAsync("agent-2");
        await WaitForHitsAsync(agent, "zebrafish");
        Assert.False(await HelpFindsAsync(app, "zebrafish", "Zebrafish quarantine"));
    }

    [Fact]
    public async Task An_index_that_was_not_in_use_while_an_article_was_unpublished_catches_up_when_it_is_used_again()
    {
        using var data = new TempDirectory();
        var first = Path.Combine(data.Path, "index-a");
        var second = Path.Combine(data.Path, "index-b");
        string id;
        await using (var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["Search:LuceneDirectory"] = first }))
        {
            using var editor = await EditorAsync(app);
            using var agent = await app.AgentAsync();
            id = Id(await PublishAsync(editor, await CreateAsync(editor, "Narwhal feeding", "How to feed the narwhal.")));
            await WaitForHitsAsync(agent, "narwhal", id);
        }
        await using (var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["Search:LuceneDirectory"] = second }))
        {
            using var editor = await EditorAsync(app, "editor-2");
            using var agent = await app.AgentAsync("agent-2");
            // An empty index: rebuilt from the store at start.
            await WaitForHitsAsync(agent, "narwhal", id);
            var current = await (await editor.GetAsync($"/api/v1/kb/articles/{id}")).Content.ReadFromJsonAsync<JsonElement>();
            (await editor.PostAsJsonAsync($"/api/v1/kb/articles/{id}/unpublish", new { version = Version(current) })).EnsureSuccessStatusCode();
            await WaitForHitsAsync(agent, "narwhal");
        }
        await using (var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["Search:LuceneDirectory"] = first }))
        {
            using var agent = await app.AgentAsync("agent-3");
            // The first folder's index still holds the article as published: its own cursor hands it the unpublish.
            await WaitForHitsAsync(agent, "narwhal");
            Assert.False(await HelpFindsAsync(app, "narwhal", "Narwhal feeding"));
        }
    }
}
