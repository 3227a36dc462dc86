using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>The public help center: anonymous, only published public articles, friendly URLs, cacheable, rate-limited search.</summary>
public sealed class HelpCenterTests : AppTest
{
    internal override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["KnowledgeBase:HelpSearchesPerSecond"] = "1",
        ["KnowledgeBase:HelpSearchBurst"] = "3",
    };

    private HttpClient Visitor() => App.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    [Fact]
    public async Task Only_published_public_articles_are_visible_to_visitors()
    {
        using var editor = await EditorAsync(App);
        var category = await (await editor.PostAsJsonAsync("/api/v1/kb/categories", new { name = "Accounts", names = new Dictionary<string, string> { ["zh-CN"] = "账户" } }))
            .Content.ReadFromJsonAsync<JsonElement>();
        var categoryId = category.GetProperty("id").GetString();
        var open = await CreateAsync(editor, "Change your email address", "Open **Profile** and edit the address.");
        open = await (await editor.PutAsJsonAsync($"/api/v1/kb/articles/{Id(open)}", new { title = "Change your email address", body = "Open **Profile** and edit the address.", visibility = "public", categoryId, version = 1 }))
            .Content.ReadFromJsonAsync<JsonElement>();
        await PublishAsync(editor, open);
        var secret = await PublishAsync(editor, await CreateAsync(editor, "Impersonate a customer address", "Agents only: address tricks.", visibility: "internal"));
        var draft = await CreateAsync(editor, "Unfinished address guide", "Draft about the address.");
        using var visitor = Visitor();

        var home = await (await visitor.GetAsync("/help/en")).Content.ReadAsStringAsync();
        var page = await visitor.GetAsync("/help/en/articles/change-your-email-address");
        var internalPage = await visitor.GetAsync("/help/en/articles/" + secret.GetProperty("slug").GetString());
        var draftPage = await visitor.GetAsync("/help/en/articles/" + draft.GetProperty("slug").GetString());

        Assert.Contains("Change your email address", home, StringComparison.Ordinal);
        Assert.Contains("Accounts", home, StringComparison.Ordinal);
        Assert.DoesNotContain("Impersonate", home, StringComparison.Ordinal);
        Assert.DoesNotContain("Unfinished", home, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<strong>Profile</strong>", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, internalPage.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, draftPage.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync("/help/en/categories/accounts")).StatusCode);

        // The class's help-search limit is a burst of 3: a 429 while the index catches up means "not yet".
        var results = await Eventually.WaitForAsync(async () =>
            {
                using var response = await visitor.GetAsync("/help/en/search?q=address");
                return response.IsSuccessStatusCode ? await response.Content.ReadAsStringAsync() : "";
            },
            html => html.Contains("Change your email address", StringComparison.Ordinal), what: "the public article in the help search");
        Assert.DoesNotContain("Impersonate", results, StringComparison.Ordinal);
        Assert.DoesNotContain("Unfinished", results, StringComparison.Ordinal);
        Assert.Contains("<mark>address</mark>", results, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pages_carry_an_etag_and_answer_304_while_nothing_changed()
    {
        using var editor = await EditorAsync(App);
        var article = await PublishAsync(editor, await CreateAsync(editor, "Opening hours", "We answer from nine to five."));
        using var visitor = Visitor();

        var first = await visitor.GetAsync("/help/en/articles/opening-hours");
        var etag = first.Headers.ETag!;
        using var again = new HttpRequestMessage(HttpMethod.Get, "/help/en/articles/opening-hours");
        again.Headers.IfNoneMatch.Add(etag);
        var cached = await visitor.SendAsync(again);
        await editor.PutAsJsonAsync($"/api/v1/kb/articles/{Id(article)}", new { title = "Opening hours", body = "We answer from eight to six.", visibility = "public", version = Version(article) });
        using var afterEdit = new HttpRequestMessage(HttpMethod.Get, "/help/en/articles/opening-hours");
        afterEdit.Headers.IfNoneMatch.Add(etag);
        var changed = await visitor.SendAsync(afterEdit);

        Assert.Contains("public", first.Headers.CacheControl!.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotModified, cached.StatusCode);
        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        Assert.Contains("eight to six", await changed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(first.Headers.Contains("Set-Cookie"), "a cacheable public page must not set cookies");
    }

    [Fact]
    public async Task The_language_switch_leads_to_the_translation_and_help_picks_the_browser_language()
    {
        using var editor = await EditorAsync(App);
        var zh = await PublishAsync(editor, await CreateAsync(editor, "退货政策", "三十天内可以退货。", "zh-CN"));
        var response = await editor.PostAsJsonAsync("/api/v1/kb/articles", new { language = "en", title = "Return policy", body = "Returns within thirty days.", visibility = "public", translationOf = Id(zh) });
        await PublishAsync(editor, await response.Content.ReadFromJsonAsync<JsonElement>());
        using var visitor = Visitor();

        var page = await visitor.GetStringAsync("/help/zh-CN/articles/" + Uri.EscapeDataString("退货政策"));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/help");
        request.Headers.AcceptLanguage.ParseAdd("zh-TW,zh;q=0.8");
        var redirect = await visitor.SendAsync(request);

        Assert.Contains("三十天内可以退货", page, StringComparison.Ordinal);
        Assert.Contains("href=\"/help/en/articles/return-policy\"", page, StringComparison.Ordinal);
        Assert.Equal("/help/zh-TW", redirect.Headers.Location!.OriginalString);
        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync("/help/fr")).StatusCode);
    }

    [Fact]
    public async Task Search_is_rate_limited_per_visitor()
    {
        using var visitor = Visitor();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
            statuses.Add((await visitor.GetAsync("/help/en/search?q=anything")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, statuses[0]);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync("/help/en")).StatusCode);
    }
    /// <summary>Review KB3: the old-slug 301 expires like the pages (a 301 without Cache-Control is kept for good), so
    /// renaming back a→b→a answers the new address instead of a redirect loop from a cached a→b.</summary>
    [Fact]
    public async Task An_old_slug_redirect_expires_like_the_pages_and_renaming_back_does_not_loop()
    {
        using var editor = await EditorAsync(App);
        var article = await PublishAsync(editor, await CreateAsync(editor, "Toner setup", "Shake the cartridge."));
        async Task<JsonElement> RenameAsync(string slug)
        {
            var response = await editor.PutAsJsonAsync($"/api/v1/kb/articles/{Id(article)}", new { title = "Toner setup", body = "Shake the cartridge.", visibility = "public", slug, version = Version(article) });
            response.EnsureSuccessStatusCode();
            return article = await response.Content.ReadFromJsonAsync<JsonElement>();
        }
        using var visitor = Visitor();

        await RenameAsync("toner-install");
        var moved = await visitor.GetAsync("/help/en/articles/toner-setup");
        await RenameAsync("toner-setup");
        var back = await visitor.GetAsync("/help/en/articles/toner-install");
        var current = await visitor.GetAsync("/help/en/articles/toner-setup");

        Assert.Equal(HttpStatusCode.MovedPermanently, moved.StatusCode);
        Assert.Equal(TimeSpan.FromMinutes(1), moved.Headers.CacheControl?.MaxAge);
        Assert.True(moved.Headers.CacheControl!.Public);
        Assert.Equal(HttpStatusCode.MovedPermanently, back.StatusCode);
        Assert.Equal("/help/en/articles/toner-setup", back.Headers.Location?.OriginalString);
        Assert.NotNull(back.Headers.CacheControl?.MaxAge);
        Assert.Equal(HttpStatusCode.OK, current.StatusCode);
    }

    /// <summary>Review KB6: a new article's editor-chosen slug that another article uses is refused (409 naming it),
    /// as on an edit; a create that takes an old slug ends its redirect.</summary>
    [Fact]
    public async Task Creating_an_article_with_a_taken_slug_is_refused_and_taking_an_old_slug_ends_its_redirect()
    {
        using var editor = await EditorAsync(App);
        var first = await PublishAsync(editor, await CreateAsync(editor, "Printer jams", "Open the tray."));
        var taken = await editor.PostAsJsonAsync("/api/v1/kb/articles", new { language = "en", title = "Other", body = "x", visibility = "public", slug = "printer-jams" });
        (await editor.PutAsJsonAsync($"/api/v1/kb/articles/{Id(first)}", new { title = "Printer jams", body = "Open the tray.", visibility = "public", slug = "paper-jams", version = Version(first) })).EnsureSuccessStatusCode();
        var created = await editor.PostAsJsonAsync("/api/v1/kb/articles", new { language = "en", title = "Old address", body = "y", visibility = "public", slug = "printer-jams" });
        var second = await created.Content.ReadFromJsonAsync<JsonElement>();
        using (var delete = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/kb/articles/{Id(second)}"))
        {
            delete.Headers.TryAddWithoutValidation("If-Match", $"\"{Version(second)}\"");
            (await editor.SendAsync(delete)).EnsureSuccessStatusCode();
        }
        using var visitor = App.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        Assert.Equal(HttpStatusCode.Conflict, taken.StatusCode);
        Assert.Contains("Printer jams", await taken.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("printer-jams", second.GetProperty("slug").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync("/help/en/articles/printer-jams")).StatusCode);
    }

    /// <summary>Review KB7: one slug limit (100, Slugify's cap): a 100-character slug is saved, a longer one is refused
    /// with a message naming the real limit.</summary>
    [Fact]
    public async Task A_slug_up_to_the_limit_is_saved_and_a_longer_one_is_refused_naming_the_limit()
    {
        using var editor = await EditorAsync(App);
        var article = await CreateAsync(editor, "Long addresses", "Body.");
        var atLimit = string.Join('-', Enumerable.Repeat("abcd", 20)) + "e"; // 100 characters
        var tooLong = string.Join('-', Enumerable.Repeat("a", 55)); // 109 characters

        var refused = await editor.PutAsJsonAsync($"/api/v1/kb/articles/{Id(article)}", new { title = "Long addresses", body = "Body.", visibility = "public", slug = tooLong, version = Version(article) });
        var saved = await editor.PutAsJsonAsync($"/api/v1/kb/articles/{Id(article)}", new { title = "Long addresses", body = "Body.", visibility = "public", slug = atLimit, version = Version(article) });

        Assert.Equal(100, atLimit.Length);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("at most 100", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, saved.StatusCode);
        Assert.Equal(atLimit, (await saved.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("slug").GetString());
    }
}
