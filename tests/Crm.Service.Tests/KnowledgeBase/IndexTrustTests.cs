using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Search;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>
/// When the search index can't be trusted at start it is rebuilt, and that stays so until a rebuild completes
/// (review B1); an index ahead of a restored store is rebuilt (B2); an older copy is recognised even when the feed
/// no longer holds the article changes (B3). The agent API reads the index only, so it shows what the index holds.
/// </summary>
public sealed class IndexTrustTests
{
    private static void Copy(string from, string to, Func<string, bool>? include = null)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (include is not null && !include(relative))
                continue;
            var target = Path.Combine(to, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    private sealed class FailingRebuilds(ISearchIndex inner) : ISearchIndex, IDisposable
    {
        public void Dispose() => (inner as IDisposable)?.Dispose();
        public string Engine => inner.Engine;
        public string Identity => inner.Identity;
        public Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default) => inner.UpsertAsync(documents, cancellationToken);
        public Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default) => inner.DeleteAsync(ids, cancellationToken);
        public Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default) => inner.SearchAsync(query, cancellationToken);
        public Task<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);
        public Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default) => inner.AppliedSequenceAsync(cancellationToken);
        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => inner.MarkAppliedAsync(sequence, cancellationToken);
        /// <summary>A disk that filled up, an Elasticsearch answering 429: the start-up rebuild fails.</summary>
        public Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default) =>
            throw new SearchUnavailableException("simulated: the rebuild could not start");
    }

    private static CrmApp FailingRebuildApp(string data, IDictionary<string, string?> settings) => new(data, settings, services: s =>
    {
        var engine = s.Last(d => d.ServiceType == typeof(ISearchIndex) && !d.IsKeyedService);
        s.Remove(engine);
        s.AddSingleton<ISearchIndex>(p => new FailingRebuilds((ISearchIndex)engine.ImplementationFactory!(p)));
    });

    /// <summary>The start-up check cannot read the index (its first count fails), and rebuilds fail too.</summary>
    private sealed class FailingCheck(ISearchIndex inner) : ISearchIndex, IDisposable
    {
        private int _counts;
        public void Dispose() => (inner as IDisposable)?.Dispose();
        public string Engine => inner.Engine;
        public string Identity => inner.Identity;
        public Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default) => inner.UpsertAsync(documents, cancellationToken);
        public Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default) => inner.DeleteAsync(ids, cancellationToken);
        public Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default) => inner.SearchAsync(query, cancellationToken);
        public Task<long> CountAsync(CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _counts) == 1 ? throw new SearchUnavailableException("simulated: the index could not be read") : inner.CountAsync(cancellationToken);
        public Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default) => inner.AppliedSequenceAsync(cancellationToken);
        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => inner.MarkAppliedAsync(sequence, cancellationToken);
        public Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default) =>
            throw new SearchUnavailableException("simulated: the rebuild could not start");
    }

    /// <summary>Review R2: a start-up check that fails records the owed rebuild before the indexer is released, so
    /// the index it could not check is rebuilt at the next start instead of trusted.</summary>
    [Fact]
    public async Task A_start_up_check_that_fails_records_an_owed_rebuild_before_the_indexer_is_released()
    {
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?> { ["Search:LuceneDirectory"] = Path.Combine(data.Path, "index") };
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app);
            using var agent = await app.AgentAsync();
            var id = Id(await PublishAsync(editor, await CreateAsync(editor, "Okapi care", "How to keep the okapi calm.")));
            await WaitForHitsAsync(agent, "okapi", id);
        }
        await using (var app = new CrmApp(data.Path, settings, services: s =>
        {
            var engine = s.Last(d => d.ServiceType == typeof(ISearchIndex) && !d.IsKeyedService);
            s.Remove(engine);
            s.AddSingleton<ISearchIndex>(p => new FailingCheck((ISearchIndex)engine.ImplementationFactory!(p)));
        }))
        {
            var gates = app.Services.GetRequiredService<Crm.Service.Infrastructure.Changes.ChangeConsumerGates>();
            var consumer = app.Services.GetRequiredService<Crm.Service.KnowledgeBase.ArticleIndexer>().Name;
            await Eventually.WaitForAsync(() => gates.AppliedAsync(consumer), applied => applied == Crm.Service.Infrastructure.Changes.ChangeConsumerGates.RebuildOwed,
                what: "the owed rebuild recorded");
        }
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var admin = app.Admin();
            await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/kb/reindex"),
                body => body.GetProperty("progress").GetProperty("state").GetString() == "completed", what: "the owed rebuild run at the next start");
        }
    }

    private static async Task UnpublishAsync(HttpClient editor, string id)
    {
        var current = await (await editor.GetAsync($"/api/v1/kb/articles/{id}")).Content.ReadFromJsonAsync<JsonElement>();
        (await editor.PostAsJsonAsync($"/api/v1/kb/articles/{id}/unpublish", new { version = Version(current) })).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task A_start_up_rebuild_that_failed_is_still_owed_at_the_next_start_even_after_the_stale_index_was_written()
    {
        using var data = new TempDirectory();
        var folder = Path.Combine(data.Path, "index");
        var backup = Path.Combine(data.Path, "index-backup");
        var settings = new Dictionary<string, string?> { ["Search:LuceneDirectory"] = folder };
        string id;
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app);
            using var agent = await app.AgentAsync();
            id = Id(await PublishAsync(editor, await CreateAsync(editor, "Axolotl care", "How to keep the axolotl tank cool.")));
            await WaitForHitsAsync(agent, "axolotl", id);
        }
        Copy(folder, backup);
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app, "editor-2");
            using var agent = await app.AgentAsync("agent-2");
            await UnpublishAsync(editor, id);
            await WaitForHitsAsync(agent, "axolotl");
        }
        Directory.Delete(folder, recursive: true);
        Copy(backup, folder);
        // The older copy is found out, but its rebuild fails; an edit meanwhile is written into the old copy (and raises its marker).
        await using (var app = FailingRebuildApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app, "editor-3");
            using var agent = await app.AgentAsync("agent-3");
            using var admin = app.Admin();
            await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/kb/reindex"),
                body => body.GetProperty("progress").GetProperty("state").GetString() == "failed", what: "the start-up rebuild failing");
            var other = Id(await PublishAsync(editor, await CreateAsync(editor, "Tapir", "Tapir feeding times.")));
            await WaitForHitsAsync(agent, "tapir", other);
        }
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var agent = await app.AgentAsync("agent-4");
            // Still owed: rebuilt now, so the article unpublished since the backup is gone from the index.
            await WaitForHitsAsync(agent, "axolotl");
            Assert.Single(await SearchIdsAsync(agent, "tapir"));
        }
    }

    [Fact]
    public async Task An_index_ahead_of_a_restored_store_is_rebuilt_so_an_article_published_in_the_lost_time_is_not_found()
    {
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?> { ["Search:LuceneDirectory"] = Path.Combine(data.Path, "index") };
        var storeBackup = Path.Combine(data.Path, "..", Path.GetFileName(data.Path) + "-store");
        string id;
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app);
            using var agent = await app.AgentAsync();
            var seed = Id(await PublishAsync(editor, await CreateAsync(editor, "Seed", "Seed article about okapis.")));
            id = Id(await CreateAsync(editor, "Quokka notes", "Unreviewed quokka notes."));
            await WaitForHitsAsync(agent, "okapis", seed);
        }
        try
        {
            // Last night's backup of the database (the index lives elsewhere and is not restored).
            Copy(data.Path, storeBackup, relative => relative.StartsWith("crm.db", StringComparison.Ordinal));
            await using (var app = new CrmApp(data.Path, settings))
            {
                using var editor = await EditorAsync(app, "editor-2");
                using var agent = await app.AgentAsync("agent-2");
                var draft = await (await editor.GetAsync($"/api/v1/kb/articles/{id}")).Content.ReadFromJsonAsync<JsonElement>();
                await PublishAsync(editor, draft);
                await WaitForHitsAsync(agent, "quokka", id);
            }
            // The stopped app's pooled connections would still read the replaced files.
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var file in Directory.GetFiles(data.Path, "crm.db*"))
                File.Delete(file);
            Copy(storeBackup, data.Path);
            await using (var app = new CrmApp(data.Path, settings))
            {
                using var agent = await app.AgentAsync("agent-3");
                // The restored store holds the article as a draft: the rebuilt index agrees.
                await WaitForHitsAsync(agent, "quokka");
            }
        }
        finally
        {
            Directory.Delete(storeBackup, recursive: true);
        }
    }

    [Fact]
    public async Task An_older_copy_is_recognised_after_the_feed_was_pruned_of_every_article_change()
    {
        using var data = new TempDirectory();
        var folder = Path.Combine(data.Path, "index");
        var backup = Path.Combine(data.Path, "index-backup");
        var settings = new Dictionary<string, string?> { ["Search:LuceneDirectory"] = folder };
        string id;
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app);
            using var agent = await app.AgentAsync();
            id = Id(await PublishAsync(editor, await CreateAsync(editor, "Pangolin diet", "What the pangolin eats.")));
            await WaitForHitsAsync(agent, "pangolin", id);
        }
        Copy(folder, backup);
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app, "editor-2");
            using var agent = await app.AgentAsync("agent-2");
            await UnpublishAsync(editor, id);
            await WaitForHitsAsync(agent, "pangolin");
            // A quiet week: the retention pruned every article change (all consumers had passed them).
            await app.QueryAsync(db => db.Database.ExecuteSqlRawAsync("DELETE FROM Changes WHERE Entity = 'article'"));
        }
        Directory.Delete(folder, recursive: true);
        Copy(backup, folder);
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var agent = await app.AgentAsync("agent-3");
            await WaitForHitsAsync(agent, "pangolin");
        }
    }
}
