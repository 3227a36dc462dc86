using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.Playwright;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>The editor page's slug, translation and archive controls in a real browser (Debian chromium), each seen
/// where it matters: the help center (old address redirects, language switch) and agents' search (the index follows
/// archive and unarchive through the change feed).</summary>
public sealed class KbEditorManageBrowserTests
{
    [Fact]
    public async Task An_editor_changes_the_slug_links_and_unlinks_a_translation_and_archives_and_unarchives_an_article()
    {
        using var data = new TempDirectory();
        var port = FreePorts.Next();
        var baseUrl = $"http://127.0.0.1:{port}";
        await using var app = new CrmApp(data.Path);
        app.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        app.StartServer();
        await ConsoleBrowser.CreateUserAsync(app, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        using var editorApi = await KbClient.EditorAsync(app);
        using var agent = await KbClient.KeyAsync(app, "agent", "agent-1");
        var en = await KbClient.PublishAsync(editorApi, await KbClient.CreateAsync(editorApi, "Toner setup", "Shake the toner cartridge before use."));
        var zh = await KbClient.PublishAsync(editorApi, await KbClient.CreateAsync(editorApi, "安装墨粉", "使用前摇匀墨粉盒。", "zh-CN"));
        await KbClient.CreateAsync(editorApi, "Other article", "Something else.");
        var enId = KbClient.Id(en);
        var zhLink = "/help/zh-CN/articles/" + Uri.EscapeDataString(zh.GetProperty("slug").GetString()!);
        await KbClient.WaitForHitsAsync(agent, "toner", enId);
        using var visitor = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(baseUrl) };

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(60_000);
        await page.GotoAsync($"{baseUrl}/Kb/Edit/{enId}");
        await page.SignInAsync("kb@example.com", new Regex($"/Kb/Edit/{enId}$"), "#kb-slug");
        Assert.Equal("toner-setup", await page.Locator("#kb-slug").InputValueAsync());

        // 1. Slug: another article's slug is refused and said so; a free one is saved, and the old address redirects.
        await page.Locator("#kb-slug").FillAsync("other-article");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save", Exact = true }).ClickAsync();
        var refusal = await page.Locator("p.error[role=alert]").TextContentAsync();
        await page.GotoAsync($"{baseUrl}/Kb/Edit/{enId}");
        await page.Locator("#kb-slug").FillAsync("toner-install");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save", Exact = true }).ClickAsync();
        await page.Locator(".status", new() { HasTextString = "version 3" }).WaitForAsync();
        var moved = await visitor.GetAsync("/help/en/articles/toner-setup");
        var current = await visitor.GetAsync("/help/en/articles/toner-install");

        // 2. Translation: link the English article to the Chinese one; the help center's language switch goes there.
        await page.Locator("#kb-translation-of").FillAsync(KbClient.Id(zh));
        await page.Locator("#kb-link").ClickAsync();
        await page.Locator("#kb-translations li", new() { HasTextString = "安装墨粉" }).WaitForAsync();
        var linkedPage = await visitor.GetStringAsync("/help/en/articles/toner-install");
        await page.Locator("#kb-unlink").ClickAsync();
        await page.Locator("#kb-translations", new() { HasTextString = "No linked translations." }).WaitForAsync();
        var unlinkedPage = await visitor.GetStringAsync("/help/en/articles/toner-install");

        // 3. Archive: gone from agents' search (the index, through the feed) and from the help center; unarchive
        // brings it back as a draft, and publishing it makes it findable again.
        await page.GetByRole(AriaRole.Button, new() { Name = "Archive", Exact = true }).ClickAsync();
        await page.Locator(".status", new() { HasTextString = "archived" }).WaitForAsync();
        await KbClient.WaitForHitsAsync(agent, "toner");
        var archivedPage = await visitor.GetAsync("/help/en/articles/toner-install");
        await page.GetByRole(AriaRole.Button, new() { Name = "Unarchive (to draft)" }).ClickAsync();
        await page.Locator(".status", new() { HasTextString = "draft" }).WaitForAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Publish", Exact = true }).ClickAsync();
        await page.Locator(".status", new() { HasTextString = "published" }).WaitForAsync();
        await KbClient.WaitForHitsAsync(agent, "toner", enId);

        Assert.Contains("\"Other article\" already uses the slug", refusal, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.MovedPermanently, moved.StatusCode);
        Assert.Equal("/help/en/articles/toner-install", moved.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.OK, current.StatusCode);
        Assert.Contains(zhLink, linkedPage, StringComparison.Ordinal);
        Assert.DoesNotContain(zhLink, unlinkedPage, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, archivedPage.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync("/help/en/articles/toner-install")).StatusCode);
    }

    [Fact]
    public async Task An_old_slug_of_an_article_the_public_may_not_see_is_not_redirected()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var editor = await KbClient.EditorAsync(app);
        var article = await KbClient.CreateAsync(editor, "Secret plan", "Internal.", visibility: "internal");
        var response = await editor.PutAsJsonAsync($"/api/v1/kb/articles/{KbClient.Id(article)}",
            new { language = "en", title = "Secret plan", body = "Internal.", visibility = "internal", slug = "renamed-plan", version = KbClient.Version(article) });
        response.EnsureSuccessStatusCode();
        await KbClient.PublishAsync(editor, await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>());
        using var visitor = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync("/help/en/articles/secret-plan")).StatusCode);
    }
}
