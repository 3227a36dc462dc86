using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>The fixes of the knowledge-base review (K1, K11–K16) through the real API and pages.</summary>
public sealed partial class KnowledgeBaseReviewTests : AppTest
{
    private HttpClient Visitor() => App.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    [GeneratedRegex("href=\"/help/en/articles/([^\"]+)\"")]
    private static partial Regex ArticleLink();

    [GeneratedRegex("rel=\"next\" href=\"([^\"]+)\"")]
    private static partial Regex NextLink();

    /// <summary>Follows the pager from <paramref name="start"/> and collects every article link.</summary>
    private static async Task<HashSet<string>> WalkAsync(HttpClient visitor, string start)
    {
        var slugs = new HashSet<string>(StringComparer.Ordinal);
        for (var (url, pages) = (start, 0); url is not null && pages < 50; pages++)
        {
            var html = await visitor.GetStringAsync(url);
            foreach (Match m in ArticleLink().Matches(html))
                slugs.Add(m.Groups[1].Value);
            url = NextLink().Match(html) is { Success: true } next ? WebUtility.HtmlDecode(next.Groups[1].Value) : null;
        }
        return slugs;
    }

    private async Task PublishManyAsync(int count, string prefix, Guid? category, int bodyLength = 40)
    {
        var store = App.Services.GetRequiredService<KnowledgeBaseStore>();
        var body = new string('x', bodyLength);
        for (var i = 0; i < count; i++)
        {
            var article = await store.CreateAsync(new ArticleDraft("en", $"{prefix} {i:D3}", body, ArticleVisibility.Public, category), "test");
            await store.SetStatusAsync(article.Id, article.Version, ArticleStatus.Published, "test");
        }
    }

    [Fact]
    public async Task K1_every_public_article_is_reachable_from_the_help_center_pages_beyond_200()
    {
        var store = App.Services.GetRequiredService<KnowledgeBaseStore>();
        var billing = await store.CreateCategoryAsync("Billing", null, null);
        await PublishManyAsync(130, "Invoice", billing.Id);
        await PublishManyAsync(140, "Other", null);
        using var visitor = Visitor();

        var fromIndex = await WalkAsync(visitor, "/help/en");
        var fromCategory = await WalkAsync(visitor, "/help/en/categories/billing");

        Assert.Equal(140, fromIndex.Count(s => s.StartsWith("other-", StringComparison.Ordinal)));
        Assert.Equal(130, fromCategory.Count);
        Assert.Contains("All 130 articles", await visitor.GetStringAsync("/help/en"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task K1_the_etag_is_checked_before_rows_are_read_and_changes_with_a_publish()
    {
        using var editor = await EditorAsync(App);
        await PublishAsync(editor, await CreateAsync(editor, "Opening hours", "Nine to five."));
        using var visitor = Visitor();
        var first = await visitor.GetAsync("/help/en");
        using var again = new HttpRequestMessage(HttpMethod.Get, "/help/en");
        again.Headers.IfNoneMatch.Add(first.Headers.ETag!);
        Assert.Equal(HttpStatusCode.NotModified, (await visitor.SendAsync(again)).StatusCode);

        await PublishAsync(editor, await CreateAsync(editor, "Holidays", "Closed on holidays."));
        using var afterPublish = new HttpRequestMessage(HttpMethod.Get, "/help/en");
        afterPublish.Headers.IfNoneMatch.Add(first.Headers.ETag!);
        var changed = await visitor.SendAsync(afterPublish);
        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        Assert.Contains("Holidays", await changed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task K11_a_huge_skip_is_refused_with_422_not_500()
    {
        using var agent = await App.AgentAsync();
        var response = await agent.GetAsync("/api/v1/kb/search?q=x&skip=2147483647");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("skip", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
    }

    [Fact]
    public async Task K12_agents_read_published_articles_only_and_no_history()
    {
        using var editor = await EditorAsync(App);
        using var agent = await App.AgentAsync();
        var draft = await CreateAsync(editor, "Unreviewed notes", "password: hunter2", visibility: "internal");
        var published = await PublishAsync(editor, await CreateAsync(editor, "Reviewed guide", "Reviewed.", visibility: "internal"));

        Assert.Equal(HttpStatusCode.NotFound, (await agent.GetAsync($"/api/v1/kb/articles/{Id(draft)}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await agent.GetAsync($"/api/v1/kb/articles/{Id(draft)}/revisions")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await agent.GetAsync($"/api/v1/kb/articles/{Id(published)}/revisions/1")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await agent.GetAsync($"/api/v1/kb/articles/{Id(published)}/revisions/2/diff")).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await agent.GetAsync("/api/v1/kb/articles?status=draft")).StatusCode);
        var list = await agent.GetFromJsonAsync<JsonElement>("/api/v1/kb/articles");
        Assert.Equal([Id(published)], list.EnumerateArray().Select(a => a.GetProperty("id").GetString()));
        Assert.Equal(HttpStatusCode.OK, (await agent.GetAsync($"/api/v1/kb/articles/{Id(published)}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await editor.GetAsync($"/api/v1/kb/articles/{Id(draft)}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await editor.GetAsync($"/api/v1/kb/articles/{Id(draft)}/revisions")).StatusCode);
    }

    [Fact]
    public async Task K13_publish_in_the_editor_saves_what_was_typed()
    {
        using var editor = await ConsoleBrowser.SignedInAsync(App, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        var fields = new Dictionary<string, string> { ["Title"] = "Printer setup", ["Language"] = "en", ["Visibility"] = "public", ["Tags"] = "", ["Body"] = "First text.", ["Version"] = "0" };
        var created = await editor.SubmitAsync("/Kb/Edit", fields, "/Kb/Edit?handler=Save");
        var edit = created.Headers.Location!.OriginalString;

        var publish = await editor.SubmitAsync(edit, new(fields) { ["Body"] = "Typed, never saved.", ["Version"] = "1" }, edit + "?handler=Publish");

        Assert.Equal(HttpStatusCode.Redirect, publish.StatusCode);
        var id = Guid.Parse(edit.Split('/')[^1]);
        var article = await App.Services.GetRequiredService<KnowledgeBaseStore>().GetAsync(id);
        Assert.Equal(ArticleStatus.Published, article!.Status);
        Assert.Equal("Typed, never saved.", article.BodyMarkdown);
        Assert.Contains("Typed, never saved.", await Visitor().GetStringAsync("/help/en/articles/printer-setup"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task K14_a_signed_in_agent_never_gets_a_publicly_cacheable_help_page()
    {
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var editor = await EditorAsync(App);
        await PublishAsync(editor, await CreateAsync(editor, "Opening hours", "Nine to five."));

        foreach (var path in new[] { "/help/en", "/help/en/articles/opening-hours", "/help/en/search?q=hours" })
        {
            var response = await agent.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.DoesNotContain("public", response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        }
        Assert.Contains("public", (await Visitor().GetAsync("/help/en")).Headers.CacheControl!.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task K15_restoring_a_public_draft_keeps_the_current_internal_visibility()
    {
        using var editor = await EditorAsync(App);
        var v1 = await CreateAsync(editor, "Refund rules", "Rough notes, never reviewed.", visibility: "public");
        var v2 = await (await editor.PutAsJsonAsync($"/api/v1/kb/articles/{Id(v1)}", new { title = "Refund rules", body = "Reviewed, agents only.", visibility = "internal", version = 1 }))
            .Content.ReadFromJsonAsync<JsonElement>();
        var v3 = await PublishAsync(editor, v2);

        var restore = await editor.PostAsJsonAsync($"/api/v1/kb/articles/{Id(v1)}/revisions/1/restore", new { version = Version(v3) });
        var restored = await restore.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.OK, restore.StatusCode);
        Assert.Equal("internal", restored.GetProperty("visibility").GetString());
        Assert.Equal("published", restored.GetProperty("status").GetString());
        Assert.Contains("Rough notes", restored.GetProperty("body").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await Visitor().GetAsync("/help/en/articles/refund-rules")).StatusCode);
    }

    [Fact]
    public async Task K16_markdown_nested_too_deeply_is_a_422_on_body_not_a_500()
    {
        using var editor = await EditorAsync(App);
        var body = string.Concat(Enumerable.Repeat("> ", 128)) + "x";
        var response = await editor.PostAsJsonAsync("/api/v1/kb/articles", new { language = "en", title = "Deep", body, visibility = "public" });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("body", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        using var console = await ConsoleBrowser.SignedInAsync(App, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        var fields = new Dictionary<string, string> { ["Title"] = "Deep", ["Language"] = "en", ["Visibility"] = "public", ["Tags"] = "", ["Body"] = body, ["Version"] = "0" };
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await console.SubmitAsync("/Kb/Edit", new(fields), "/Kb/Edit?handler=Save")).StatusCode);
        var preview = await console.SubmitAsync("/Kb/Edit", new(fields), "/Kb/Edit?handler=Preview");
        Assert.Equal(HttpStatusCode.OK, preview.StatusCode);
        Assert.Contains("too deeply", await preview.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
