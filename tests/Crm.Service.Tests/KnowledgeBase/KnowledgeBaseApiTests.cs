using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Search;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>Articles through the REST API: roles, Markdown, revisions, conflicts, and the index following every save.</summary>
public sealed class KnowledgeBaseApiTests : AppTest
{
    [Fact]
    public async Task A_published_article_is_found_by_agents_and_a_draft_is_not()
    {
        using var editor = await EditorAsync(App);
        using var agent = await App.AgentAsync();
        var draft = await CreateAsync(editor, "如何重置路由器", "按住路由器背面的**重置**按钮十秒钟。", "zh-CN", visibility: "internal");
        var other = await CreateAsync(editor, "Router reset", "Hold the reset button of the router for ten seconds.");

        await PublishAsync(editor, other);
        await WaitForHitsAsync(agent, "router", Id(other));
        Assert.Empty(await SearchIdsAsync(agent, "路由器"));

        await PublishAsync(editor, draft);
        await WaitForHitsAsync(agent, "路由器", Id(draft));
        var hit = (await (await agent.GetAsync("/api/v1/kb/search?q=" + Uri.EscapeDataString("重置路由器"))).Content.ReadFromJsonAsync<JsonElement>())
            .GetProperty("hits")[0];
        Assert.Contains("<mark>", hit.GetProperty("snippet").GetString(), StringComparison.Ordinal);
        Assert.Equal("如何重置路由器", hit.GetProperty("slug").GetString());
    }

    [Fact]
    public async Task Agents_read_but_cannot_write_and_editors_cannot_reach_tickets()
    {
        using var editor = await EditorAsync(App);
        using var agent = await App.AgentAsync();
        var article = await PublishAsync(editor, await CreateAsync(editor, "Billing", "Invoices are monthly."));

        Assert.Equal(HttpStatusCode.Forbidden, (await agent.PostAsJsonAsync("/api/v1/kb/articles", new { language = "en", title = "x", body = "y", visibility = "public" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await agent.PostAsJsonAsync($"/api/v1/kb/articles/{Id(article)}/publish", new { version = 1 })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await agent.GetAsync($"/api/v1/kb/articles/{Id(article)}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await editor.GetAsync("/api/v1/tickets")).StatusCode);
        using var anonymous = App.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/kb/search?q=billing")).StatusCode);
    }

    [Fact]
    public async Task Markdown_is_rendered_and_the_html_sanitized()
    {
        using var editor = await EditorAsync(App);

        var article = await CreateAsync(editor, "Formatting", "# Steps\n\n1. **Open** settings\n\n<script>alert(1)</script>\n\n[click](javascript:alert(2)) <img src=x onerror=alert(3)>");
        var html = article.GetProperty("html").GetString()!;

        Assert.Contains("<strong>Open</strong>", html, StringComparison.Ordinal);
        Assert.Contains("<ol>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("javascript:", html, StringComparison.OrdinalIgnoreCase);
        // Raw HTML in Markdown stays text (encoded), never an element.
        Assert.DoesNotContain("<img", html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("&lt;img", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_second_of_two_editors_saving_the_same_version_gets_a_conflict_not_an_overwrite()
    {
        using var alice = await EditorAsync(App, "alice");
        using var bob = await EditorAsync(App, "bob");
        var article = await CreateAsync(alice, "VPN", "Connect with the VPN client.");
        var id = Id(article);

        var first = await alice.PutAsJsonAsync($"/api/v1/kb/articles/{id}", new { title = "VPN", body = "Alice's text.", visibility = "public", version = 1 });
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/kb/articles/{id}") { Content = JsonContent.Create(new { title = "VPN", body = "Bob's text.", visibility = "public" }) };
        request.Headers.IfMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue("\"1\""));
        var second = await bob.SendAsync(request);
        var missing = await bob.PutAsJsonAsync($"/api/v1/kb/articles/{id}", new { title = "VPN", body = "No version.", visibility = "public" });

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("\"2\"", first.Headers.ETag!.Tag);
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Contains("apikey:alice", await second.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, missing.StatusCode);
        var stored = await (await bob.GetAsync($"/api/v1/kb/articles/{id}")).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Alice's text.", stored.GetProperty("body").GetString());
        Assert.Equal(2, Version(stored));
    }

    [Fact]
    public async Task Every_save_is_a_revision_with_a_diff_and_an_old_one_can_be_restored()
    {
        using var editor = await EditorAsync(App);
        using var agent = await App.AgentAsync();
        var article = await CreateAsync(editor, "Passwords", "Line one.\nUse the reset link.\nLine three.");
        var id = Id(article);
        var saved = await (await editor.PutAsJsonAsync($"/api/v1/kb/articles/{id}", new { title = "Passwords", body = "Line one.\nCall the helpdesk.\nLine three.", visibility = "public", version = 1 }))
            .Content.ReadFromJsonAsync<JsonElement>();
        var published = await PublishAsync(editor, saved);
        await WaitForHitsAsync(agent, "helpdesk", id);

        var revisions = await (await editor.GetAsync($"/api/v1/kb/articles/{id}/revisions")).Content.ReadFromJsonAsync<JsonElement>();
        var diff = await (await editor.GetAsync($"/api/v1/kb/articles/{id}/revisions/2/diff")).Content.ReadFromJsonAsync<JsonElement>();
        var restore = await editor.PostAsJsonAsync($"/api/v1/kb/articles/{id}/revisions/1/restore", new { version = Version(published) });
        var restored = await restore.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal([3, 2, 1], revisions.EnumerateArray().Select(r => r.GetProperty("version").GetInt32()));
        Assert.Equal(["published", "edited", "created"], revisions.EnumerateArray().Select(r => r.GetProperty("note").GetString()));
        var changed = diff.GetProperty("lines").EnumerateArray().Where(l => l.GetProperty("op").GetString() != "same")
            .Select(l => l.GetProperty("op").GetString() + ":" + l.GetProperty("line").GetString()).ToList();
        Assert.Equal(["removed:Use the reset link.", "added:Call the helpdesk."], changed);
        Assert.Equal(HttpStatusCode.OK, restore.StatusCode);
        Assert.Equal(4, Version(restored));
        Assert.Equal("published", restored.GetProperty("status").GetString());
        Assert.Contains("Use the reset link.", restored.GetProperty("body").GetString(), StringComparison.Ordinal);
        await WaitForHitsAsync(agent, "helpdesk");
        await WaitForHitsAsync(agent, "reset link", id);
    }

    [Fact]
    public async Task Archive_and_delete_take_the_article_out_of_the_index()
    {
        using var editor = await EditorAsync(App);
        using var agent = await App.AgentAsync();
        var kept = await PublishAsync(editor, await CreateAsync(editor, "Shipping rates", "Parcels cost five euros."));
        var archived = await PublishAsync(editor, await CreateAsync(editor, "Old shipping", "Parcels used to cost three euros."));
        var deleted = await PublishAsync(editor, await CreateAsync(editor, "Shipping abroad", "Parcels abroad cost nine euros."));
        await WaitForHitsAsync(agent, "parcels", Id(kept), Id(archived), Id(deleted));

        (await editor.PostAsJsonAsync($"/api/v1/kb/articles/{Id(archived)}/archive", new { version = Version(archived) })).EnsureSuccessStatusCode();
        using var delete = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/kb/articles/{Id(deleted)}");
        delete.Headers.IfMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue($"\"{Version(deleted)}\""));
        Assert.Equal(HttpStatusCode.NoContent, (await editor.SendAsync(delete)).StatusCode);

        await WaitForHitsAsync(agent, "parcels", Id(kept));
        var index = App.Services.GetRequiredService<ISearchIndex>();
        await Eventually.WaitForAsync(() => index.CountAsync(), count => count == 2, what: "the deleted article leaving the index (the archived one stays, as archived)");
        Assert.Equal(HttpStatusCode.NotFound, (await agent.GetAsync($"/api/v1/kb/articles/{Id(deleted)}")).StatusCode);
    }

    [Fact]
    public async Task A_reindex_rebuilds_from_the_store_and_reports_progress()
    {
        using var editor = await EditorAsync(App);
        using var agent = await App.AgentAsync();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
            ids.Add(Id(await PublishAsync(editor, await CreateAsync(editor, $"Modem {i}", "Modem lights explained."))));
        await WaitForHitsAsync(agent, "modem", [.. ids]);
        // Drift the index away from the store behind the feed's back: the rebuild must bring the article back.
        await App.Services.GetRequiredService<ISearchIndex>().DeleteAsync([ids[0]]);
        await WaitForHitsAsync(agent, "modem", ids[1], ids[2]);

        using var admin = App.Admin();
        var started = await admin.PostAsync("/api/v1/admin/kb/reindex", null);
        var progress = await Eventually.WaitForAsync(
            async () => (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/kb/reindex")).GetProperty("progress"),
            p => p.GetProperty("state").GetString() == "completed", what: "the reindex to complete");

        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        Assert.Equal(3, progress.GetProperty("total").GetInt32());
        Assert.Equal(3, progress.GetProperty("done").GetInt32());
        Assert.Equal([.. ids.Order()], (await SearchIdsAsync(agent, "modem")).Order());
        Assert.Equal(HttpStatusCode.Forbidden, (await editor.PostAsync("/api/v1/admin/kb/reindex", null)).StatusCode);
    }
}

/// <summary>A crash between the store's commit and the index update: the feed's cursor hands the change again after the restart.</summary>
public sealed class KnowledgeBaseCrashTests
{
    /// <summary>An index whose writes fail, as if the process died right after the store committed.</summary>
    private sealed class DeadIndex(ISearchIndex inner) : ISearchIndex, IDisposable
    {
        public void Dispose() => (inner as IDisposable)?.Dispose();
        public static volatile bool Dead;
        public string Engine => inner.Engine;
        public Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default) =>
            Dead ? throw new IOException("simulated crash before the index write") : inner.UpsertAsync(documents, cancellationToken);
        public Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default) =>
            Dead ? throw new IOException("simulated crash before the index write") : inner.DeleteAsync(ids, cancellationToken);
        public Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default) => inner.SearchAsync(query, cancellationToken);
        public Task<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);
        public Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default) => inner.AppliedSequenceAsync(cancellationToken);
        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) =>
            Dead ? throw new IOException("simulated crash before the index write") : inner.MarkAppliedAsync(sequence, cancellationToken);
        public Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default) => throw new IOException("simulated crash");
    }

    [Fact]
    public async Task A_publish_whose_index_update_never_happened_is_indexed_after_the_restart()
    {
        using var data = new TempDirectory();
        string id;
        await using (var first = new CrmApp(data.Path, services: s =>
        {
            var engine = s.Last(d => d.ServiceType == typeof(ISearchIndex) && !d.IsKeyedService);
            s.Remove(engine);
            s.AddSingleton<ISearchIndex>(p => new DeadIndex((ISearchIndex)engine.ImplementationFactory!(p)));
        }))
        {
            using var editor = await EditorAsync(first);
            using var agent = await first.AgentAsync();
            // A first article reaches the index, so the restarted service does not rebuild an empty index (which
            // would hide whether the cursor repaired anything).
            var seed = await PublishAsync(editor, await CreateAsync(editor, "Seed", "Seed article."));
            await WaitForHitsAsync(agent, "seed", Id(seed));
            DeadIndex.Dead = true;
            var article = await PublishAsync(editor, await CreateAsync(editor, "Firewall ports", "Open port 443 on the firewall."));
            id = Id(article);
            Assert.Empty(await SearchIdsAsync(agent, "firewall"));
            // The consumer failed on the article's changes, so its cursor is still before them.
            var cursor = await first.QueryAsync(db => Task.FromResult(db.ChangeCursors.Where(c => c.Consumer.StartsWith("search-articles:")).Select(c => (long?)c.Sequence).FirstOrDefault()));
            var head = await first.QueryAsync(db => Task.FromResult(db.Changes.Where(c => c.Entity == "article").Max(c => c.Sequence)));
            Assert.True(cursor is null || cursor < head, $"cursor {cursor} should be behind the article changes (head {head})");
        }

        DeadIndex.Dead = false;
        await using var second = new CrmApp(data.Path);
        using var agent2 = await second.AgentAsync("agent-2");
        await WaitForHitsAsync(agent2, "firewall", id);
    }
}
