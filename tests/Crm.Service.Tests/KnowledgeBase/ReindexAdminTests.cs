using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Search;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Playwright;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>The admin's reindex: the button on /Kb with its progress (in chromium), Admin only, idempotent, and safe
/// while searches run.</summary>
public sealed class ReindexAdminTests
{
    /// <summary>Counts rebuilds and holds each one before it fills until the test opens the gate.</summary>
    private sealed class GatedIndex(ISearchIndex inner) : ISearchIndex, IDisposable
    {
        public readonly TaskCompletionSource Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Rebuilds;
        public void Dispose() => (inner as IDisposable)?.Dispose();
        public string Engine => inner.Engine;
        public string Identity => inner.Identity;
        public Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default) => inner.UpsertAsync(documents, cancellationToken);
        public Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default) => inner.DeleteAsync(ids, cancellationToken);
        public Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default) => inner.SearchAsync(query, cancellationToken);
        public Task<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);
        public Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default) => inner.AppliedSequenceAsync(cancellationToken);
        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => inner.MarkAppliedAsync(sequence, cancellationToken);
        public async Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Rebuilds);
            await Gate.Task.WaitAsync(cancellationToken);
            return await inner.BeginRebuildAsync(cancellationToken);
        }
    }

    private static (CrmApp App, GatedIndex Index) GatedApp(string data)
    {
        var app = new CrmApp(data, services: s =>
        {
            var engine = s.Last(d => d.ServiceType == typeof(ISearchIndex) && !d.IsKeyedService);
            s.Remove(engine);
            s.AddSingleton<ISearchIndex>(p => new GatedIndex((ISearchIndex)engine.ImplementationFactory!(p)));
        });
        _ = app.Services;
        return (app, (GatedIndex)app.Services.GetRequiredService<ISearchIndex>());
    }

    [Fact]
    public async Task A_second_reindex_request_while_one_runs_starts_nothing_and_answers_the_running_one()
    {
        using var data = new TempDirectory();
        var (app, index) = GatedApp(data.Path);
        await using var _ = app;
        using var editor = await EditorAsync(app);
        using var agent = await app.AgentAsync();
        var id = Id(await PublishAsync(editor, await CreateAsync(editor, "Gecko lamp", "The gecko lamp timer.")));
        await WaitForHitsAsync(agent, "gecko", id);
        using var admin = app.Admin();

        var first = await admin.PostAsync("/api/v1/admin/kb/reindex", null);
        var second = await admin.PostAsync("/api/v1/admin/kb/reindex", null);

        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        Assert.True((await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("started").GetBoolean());
        var again = await second.Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(again.GetProperty("started").GetBoolean());
        Assert.Equal("running", again.GetProperty("progress").GetProperty("state").GetString());
        // Searches answer from the old index while the rebuild waits.
        Assert.Equal([id], await SearchIdsAsync(agent, "gecko"));
        index.Gate.SetResult();
        await Eventually.WaitForAsync(async () => (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/kb/reindex")).GetProperty("progress").GetProperty("state").GetString(),
            state => state == "completed", what: "the reindex to complete");
        Assert.Equal(1, index.Rebuilds);
        Assert.Equal([id], await SearchIdsAsync(agent, "gecko"));
    }

    [Fact]
    public async Task Searches_running_during_repeated_rebuilds_always_answer_and_always_find_the_article()
    {
        using var root = new TempDirectory();
        using var index = new LuceneSearchIndex(root.Path, NullLogger<LuceneSearchIndex>.Instance);
        var doc = new SearchDocument("a", "en", "Iguana heating", "Keep the iguana terrarium warm.", "public", "published");
        await index.UpsertAsync([doc]);
        using var stop = new CancellationTokenSource();
        var searched = 0;
        var searchers = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var results = await index.SearchAsync(new SearchQuery("iguana"));
                Assert.Equal(["a"], results.Hits.Select(h => h.Id));
                Interlocked.Increment(ref searched);
            }
        })).ToList();

        for (var i = 0; i < 10; i++)
        {
            await using var rebuild = await index.BeginRebuildAsync();
            await rebuild.AddAsync([doc with { Body = $"Keep the iguana terrarium warm ({i})." }]);
            await rebuild.CompleteAsync();
            await Eventually.WaitForAsync(() => Task.FromResult(Volatile.Read(ref searched)), n => n > i * 5, what: "searches between swaps");
        }
        stop.Cancel();
        await Task.WhenAll(searchers);

        Assert.Single(Directory.GetDirectories(root.Path));
        Assert.Contains("(9)", (await index.SearchAsync(new SearchQuery("iguana"))).Hits.Single().Snippet, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_an_admin_sees_the_rebuild_button_and_may_post_it()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var editor = await ConsoleBrowser.SignedInAsync(app, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        using var admin = await ConsoleBrowser.SignedInAsync(app, "admin@example.com", ConsoleRoles.Admin);

        Assert.DoesNotContain("reindex-button", await editor.PageAsync("/Kb"), StringComparison.Ordinal);
        Assert.Contains("reindex-button", await admin.PageAsync("/Kb"), StringComparison.Ordinal);
        var refused = await editor.SubmitAsync("/Kb", [], "/Kb?handler=Reindex");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await editor.GetAsync("/Kb?handler=ReindexProgress")).StatusCode);
        Assert.Equal("idle", (await app.Admin().GetFromJsonAsync<JsonElement>("/api/v1/admin/kb/reindex")).GetProperty("progress").GetProperty("state").GetString());
        var forged = await admin.PostWithoutTokenAsync("/Kb?handler=Reindex", []);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
    }

    [Fact]
    public async Task An_admin_rebuilds_the_index_from_the_kb_page_and_sees_it_complete()
    {
        using var data = new TempDirectory();
        var port = FreePorts.Next();
        var baseUrl = $"http://127.0.0.1:{port}";
        await using var app = new CrmApp(data.Path);
        app.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        app.StartServer();
        using (var editor = await EditorAsync(app))
        {
            for (var i = 0; i < 3; i++)
                await PublishAsync(editor, await CreateAsync(editor, $"Chameleon {i}", "Chameleon misting schedule."));
        }
        await ConsoleBrowser.CreateUserAsync(app, "admin@example.com", ConsoleRoles.Admin);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(baseUrl + "/Kb");
        await page.SignInAsync("admin@example.com", new Regex("/Kb"), "#search-index");

        await page.GetByRole(AriaRole.Button, new() { Name = "Rebuild search index" }).ClickAsync();

        var status = page.Locator("#reindex-progress[data-state='completed']");
        await status.WaitForAsync(new() { Timeout = 60_000 });
        Assert.Contains("3 of 3 articles", await status.TextContentAsync(), StringComparison.Ordinal);
        Assert.True(await page.GetByRole(AriaRole.Button, new() { Name = "Rebuild search index" }).IsEnabledAsync());
    }
}
