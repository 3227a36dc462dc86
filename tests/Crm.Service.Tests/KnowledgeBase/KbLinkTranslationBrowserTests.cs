using System.Net;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>KB5: "link a translation" reaches every article of the other language, not the first 200 by title. The
/// editor finds the article by title (or names it by id or slug) and the link goes through the page's Link handler,
/// which refuses, at the field, an article that does not exist, one in the same language and one already linked.</summary>
public sealed class KbLinkTranslationBrowserTests
{
    [Fact]
    public async Task An_editor_links_the_article_that_sorts_after_200_others_and_bad_links_are_refused_at_the_field()
    {
        using var data = new TempDirectory();
        var port = FreePorts.Next();
        var baseUrl = $"http://127.0.0.1:{port}";
        await using var app = new CrmApp(data.Path);
        app.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        app.StartServer();
        await ConsoleBrowser.CreateUserAsync(app, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        var store = app.Services.GetRequiredService<KnowledgeBaseStore>();
        async Task<ArticleRecord> PublishedAsync(string language, string title, string slug)
        {
            var created = await store.CreateAsync(new ArticleDraft(language, title, "Body of " + title, ArticleVisibility.Public, Slug: slug), "test");
            return await store.SetStatusAsync(created.Id, created.Version, ArticleStatus.Published, "test");
        }
        var en = await PublishedAsync("en", "Toner setup", "toner-setup");
        var otherEn = await PublishedAsync("en", "Paper jams", "paper-jams");
        // 201 Chinese articles; the one to link sorts last by title, after the 200 the old list offered.
        for (var i = 0; i < 201; i++)
            await PublishedAsync("zh-CN", $"文章 {i:000}", $"article-{i:000}");
        var target = await PublishedAsync("zh-CN", "装墨粉 安装说明", "toner-install");
        using var visitor = new HttpClient { BaseAddress = new Uri(baseUrl) };
        var zhLink = "/help/zh-CN/articles/toner-install";
        Assert.DoesNotContain(zhLink, await visitor.GetStringAsync("/help/en/articles/toner-setup"), StringComparison.Ordinal);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(60_000);
        await page.GotoAsync($"{baseUrl}/Kb/Edit/{en.Id}");
        await page.SignInAsync("kb@example.com", new Regex($"/Kb/Edit/{en.Id}$"), "#kb-slug");
        var error = page.Locator("#kb-link-error");

        // Refused at the field: no such article, one in the article's own language.
        await page.Locator("#kb-translation-of").FillAsync(Guid.NewGuid().ToString());
        await page.Locator("#kb-link").ClickAsync();
        await Assertions.Expect(error).ToContainTextAsync("does not exist");
        await page.Locator("#kb-translation-of").FillAsync(otherEn.Id.ToString());
        await page.Locator("#kb-link").ClickAsync();
        await Assertions.Expect(error).ToContainTextAsync("another language");
        await page.Locator("#kb-translation-of").FillAsync("no-such-slug");
        await page.Locator("#kb-link").ClickAsync();
        await Assertions.Expect(error).ToContainTextAsync("No article in another language");

        // Find it by title and link it: the help center's language switch goes there.
        await page.Locator("#kb-link-search").FillAsync("墨粉");
        await page.Locator("#kb-link-find").ClickAsync();
        await Assertions.Expect(page.Locator("#kb-link-matches li")).ToHaveCountAsync(1);
        await page.Locator("#kb-link-matches li button").ClickAsync();
        await Assertions.Expect(page.Locator("#kb-translations li", new() { HasTextString = "装墨粉 安装说明" })).ToHaveCountAsync(1);
        Assert.Contains(zhLink, await visitor.GetStringAsync("/help/en/articles/toner-setup"), StringComparison.Ordinal);

        // Already linked: the search no longer offers zh-CN articles, and naming it anyway is refused at the field.
        await page.Locator("#kb-link-search").FillAsync("墨粉");
        await page.Locator("#kb-link-find").ClickAsync();
        await Assertions.Expect(page.Locator("#kb-link-matches")).ToContainTextAsync("No article in another language matches");
        await page.Locator("#kb-translation-of").FillAsync(target.Id.ToString());
        await page.Locator("#kb-link").ClickAsync();
        await Assertions.Expect(error).ToContainTextAsync("already linked");
    }
}
