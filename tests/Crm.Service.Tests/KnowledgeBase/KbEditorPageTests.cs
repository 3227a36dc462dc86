using System.Net;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>The editor pages (/Kb): role-checked, anti-forgery, live preview, conflicts and restore through the forms.</summary>
public sealed class KbEditorPageTests : AppTest
{
    private static void AssertRedirectsTo(HttpResponseMessage response, string path)
    {
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith(path, response.Headers.Location!.OriginalString.Replace("https://localhost", ""), StringComparison.Ordinal);
    }

    private static Dictionary<string, string> Fields(string title, string body, int version = 0) => new()
    {
        ["Title"] = title, ["Language"] = "en", ["Visibility"] = "public", ["Tags"] = "faq", ["Body"] = body, ["Version"] = version.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task Only_knowledge_editors_and_admins_reach_the_editor()
    {
        using var nobody = ConsoleBrowser.Open(App);
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var editor = await ConsoleBrowser.SignedInAsync(App, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        using var admin = await ConsoleBrowser.SignedInAsync(App, "admin@example.com", ConsoleRoles.Admin);

        AssertRedirectsTo(await nobody.GetAsync("/Kb"), "/Account/Login");
        AssertRedirectsTo(await agent.GetAsync("/Kb"), "/Account/AccessDenied");
        AssertRedirectsTo(await agent.GetAsync("/Kb/Edit"), "/Account/AccessDenied");
        Assert.Equal(HttpStatusCode.OK, (await editor.GetAsync("/Kb")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/Kb/Edit")).StatusCode);
        var forged = await editor.PostWithoutTokenAsync("/Kb/Edit?handler=Save", Fields("Forged", "no token"));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.DoesNotContain("Forged", await editor.PageAsync("/Kb"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_editors_on_one_article_the_second_save_is_a_conflict_and_the_first_text_stays()
    {
        using var alice = await ConsoleBrowser.SignedInAsync(App, "alice@example.com", ConsoleRoles.KnowledgeEditor);
        using var bob = await ConsoleBrowser.SignedInAsync(App, "bob@example.com", ConsoleRoles.KnowledgeEditor);
        var created = await alice.SubmitAsync("/Kb/Edit", Fields("Printer setup", "First text."), "/Kb/Edit?handler=Save");
        Assert.Equal(HttpStatusCode.Redirect, created.StatusCode);
        var edit = created.Headers.Location!.OriginalString;

        var preview = await alice.SubmitAsync(edit, Fields("Printer setup", "**bold** <script>x</script>", 1), edit + "?handler=Preview");
        var aliceSave = await alice.SubmitAsync(edit, Fields("Printer setup", "Alice's text.", 1), edit + "?handler=Save");
        var bobSave = await bob.SubmitAsync(edit, Fields("Printer setup", "Bob's text.", 1), edit + "?handler=Save");

        var previewHtml = await preview.Content.ReadAsStringAsync();
        Assert.Contains("<strong>bold</strong>", previewHtml, StringComparison.Ordinal);
        Assert.DoesNotContain("<script", previewHtml, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, aliceSave.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, bobSave.StatusCode);
        Assert.Contains("user:alice@example.com", WebUtility.HtmlDecode(await bobSave.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        var page = await bob.PageAsync(edit);
        Assert.Contains("Alice&#x27;s text.", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_from_the_page_and_restore_from_the_history()
    {
        using var editor = await ConsoleBrowser.SignedInAsync(App, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        var created = await editor.SubmitAsync("/Kb/Edit", Fields("Returns", "Old wording."), "/Kb/Edit?handler=Save");
        var edit = created.Headers.Location!.OriginalString;
        var id = edit.Split('/')[^1];
        await editor.SubmitAsync(edit, Fields("Returns", "New wording.", 1), edit + "?handler=Save");
        // The Publish button submits the whole form (it saves what is typed, then publishes).
        var published = await editor.SubmitAsync(edit, Fields("Returns", "New wording.", 2), edit + "?handler=Publish");
        Assert.Equal(HttpStatusCode.Redirect, published.StatusCode);

        var history = WebUtility.HtmlDecode(await editor.PageAsync($"/Kb/History/{id}?diff=2"));
        Assert.Contains("- Old wording.", history, StringComparison.Ordinal);
        Assert.Contains("+ New wording.", history, StringComparison.Ordinal);
        var restored = await editor.SubmitAsync($"/Kb/History/{id}", new() { ["revision"] = "1", ["version"] = "3" }, $"/Kb/History/{id}?handler=Restore");
        var stale = await editor.SubmitAsync($"/Kb/History/{id}", new() { ["revision"] = "1", ["version"] = "3" }, $"/Kb/History/{id}?handler=Restore");

        Assert.Equal(HttpStatusCode.Redirect, restored.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        var page = await editor.PageAsync(edit);
        Assert.Contains("Old wording.", page, StringComparison.Ordinal);
        Assert.Contains("published · version 4", page, StringComparison.Ordinal);
    }

    // Issue 21 audit: the editor list's filters (language, status, visibility) each narrow the list, and together too.
    [Fact]
    public async Task The_article_list_filters_by_language_status_and_visibility()
    {
        using var api = await KbClient.EditorAsync(App);
        await KbClient.PublishAsync(api, await KbClient.CreateAsync(api, "Public english", "One."));
        await KbClient.CreateAsync(api, "Draft english", "Two.");
        await KbClient.PublishAsync(api, await KbClient.CreateAsync(api, "Internal english", "Three.", visibility: "internal"));
        await KbClient.PublishAsync(api, await KbClient.CreateAsync(api, "中文文章", "四。", "zh-CN"));
        using var editor = await ConsoleBrowser.SignedInAsync(App, "kb@example.com", Crm.Service.Auth.ConsoleRoles.KnowledgeEditor);

        async Task<string[]> TitlesAsync(string query)
        {
            var html = await editor.PageAsync("/Kb" + query);
            return [.. System.Text.RegularExpressions.Regex.Matches(html, "<a href=\"/Kb/Edit/[^\"]+\">([^<]+)</a>").Select(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value)).Order(StringComparer.Ordinal)];
        }

        Assert.Equal(["Draft english", "Internal english", "Public english", "中文文章"], await TitlesAsync(""));
        Assert.Equal(["中文文章"], await TitlesAsync("?language=zh-CN"));
        Assert.Equal(["Draft english"], await TitlesAsync("?status=draft"));
        Assert.Equal(["Internal english"], await TitlesAsync("?visibility=internal"));
        Assert.Equal(["Public english"], await TitlesAsync("?language=en&status=published&visibility=public"));
    }
}
