using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>
/// The index carries a version marker (the change-feed position it reflects); at start it is compared with the
/// store's record of what the index handled, so a restored older copy of the index is rebuilt instead of trusted.
/// </summary>
public sealed class IndexMarkerTests
{
    private static async Task<bool> HelpFindsAsync(CrmApp app, string word, string title)
    {
        using var visitor = app.CreateClient();
        var html = await visitor.GetStringAsync("/help/en/search?q=" + word);
        return html.Contains(title, StringComparison.Ordinal);
    }

    private static void Copy(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    [Fact]
    public async Task A_restored_older_copy_of_the_index_is_rebuilt_so_an_article_unpublished_since_is_not_public()
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
        // The backup: a copy of the index folder while the service is stopped.
        Copy(folder, backup);
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app, "editor-2");
            using var agent = await app.AgentAsync("agent-2");
            var current = await (await editor.GetAsync($"/api/v1/kb/articles/{id}")).Content.ReadFromJsonAsync<JsonElement>();
            (await editor.PostAsJsonAsync($"/api/v1/kb/articles/{id}/unpublish", new { version = Version(current) })).EnsureSuccessStatusCode();
            await WaitForHitsAsync(agent, "axolotl");
        }
        // The backup is restored: it still holds the article as published, and the store's cursor is past the unpublish.
        Directory.Delete(folder, recursive: true);
        Copy(backup, folder);
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var agent = await app.AgentAsync("agent-3");
            await WaitForHitsAsync(agent, "axolotl");
            Assert.False(await HelpFindsAsync(app, "axolotl", "Axolotl care"));
        }
    }

    [Fact]
    public async Task An_index_that_is_up_to_date_is_not_rebuilt_at_start()
    {
        using var data = new TempDirectory();
        var folder = Path.Combine(data.Path, "index");
        var settings = new Dictionary<string, string?> { ["Search:LuceneDirectory"] = folder };
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app);
            using var agent = await app.AgentAsync();
            var id = Id(await PublishAsync(editor, await CreateAsync(editor, "Okapi", "Okapi feeding times.")));
            await WaitForHitsAsync(agent, "okapi", id);
        }
        var generation = File.ReadAllText(Path.Combine(folder, "current"));
        await using (var app = new CrmApp(data.Path, settings))
        {
            using var editor = await EditorAsync(app, "editor-2");
            using var agent = await app.AgentAsync("agent-2");
            // The indexer handles changes only after the start-up check, so a new article found means the check ran.
            var id = Id(await PublishAsync(editor, await CreateAsync(editor, "Tapir", "Tapir feeding times.")));
            await WaitForHitsAsync(agent, "tapir", id);
            using var admin = app.Admin();
            var state = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/kb/reindex")).GetProperty("progress").GetProperty("state").GetString();
            Assert.Equal("idle", state);
            Assert.Single(await SearchIdsAsync(agent, "okapi"));
        }
        Assert.Equal(generation, File.ReadAllText(Path.Combine(folder, "current")));
    }
}
