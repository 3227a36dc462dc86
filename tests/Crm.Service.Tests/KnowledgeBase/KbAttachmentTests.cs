using System.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>Article attachments and images: upload limits and type checks, serving under the article's visibility
/// with nosniff, and images in article HTML only from our own attachment URLs.</summary>
public sealed class KbAttachmentTests : AppTest
{
    internal override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["KnowledgeBase:MaxAttachmentBytes"] = "4096",
        ["KnowledgeBase:HelpSearchBurst"] = "100",
    };

    /// <summary>A 1×1 PNG.</summary>
    private static readonly byte[] Png = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==");

    private HttpClient Visitor() => App.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    private static Task<HttpResponseMessage> UploadAsync(HttpClient client, string articleId, string name, byte[] bytes, string type)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return client.PutAsync($"/api/v1/kb/articles/{articleId}/attachments/{Uri.EscapeDataString(name)}", content);
    }

    private static async Task<JsonElement> SaveAsync(HttpClient editor, JsonElement article, string body, string visibility = "public")
    {
        var response = await editor.PutAsJsonAsync($"/api/v1/kb/articles/{Id(article)}", new { title = article.GetProperty("title").GetString(), body, visibility, version = Version(article) });
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>Issue 21: agents' search finds words inside an article's text attachments (.txt, .md as its plain
    /// text); deleting the attachment takes its words out of the index.</summary>
    [Fact]
    public async Task Words_inside_a_text_or_markdown_attachment_find_the_article_until_the_attachment_is_deleted()
    {
        using var editor = await EditorAsync(App, "editor-attachment-text");
        using var agent = await App.AgentAsync("agent-attachment-text");
        var article = await PublishAsync(editor, await CreateAsync(editor, "Modem reset", "Hold the button."));
        var id = Id(article);
        var text = await UploadAsync(editor, id, "steps.txt", Encoding.UTF8.GetBytes("Then wait for the xylophonic chime."), "text/plain");
        Assert.Equal(HttpStatusCode.Created, text.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await UploadAsync(editor, id, "notes.md", Encoding.UTF8.GetBytes("# Notes\n\n**Quixotical** blinking is normal."), "text/plain")).StatusCode);

        await WaitForHitsAsync(agent, "xylophonic", id);
        await WaitForHitsAsync(agent, "quixotical", id);

        var attachmentId = (await text.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.NoContent, (await editor.DeleteAsync($"/api/v1/kb/articles/{id}/attachments/{attachmentId}")).StatusCode);
        await WaitForHitsAsync(agent, "xylophonic");
        Assert.Equal([id], await SearchIdsAsync(agent, "quixotical"));
    }

    [Fact]
    public async Task An_uploaded_image_shows_in_the_public_article_and_is_served_with_nosniff()
    {
        using var editor = await EditorAsync(App);
        var article = await CreateAsync(editor, "Router lights", "Draft.");
        var upload = await UploadAsync(editor, Id(article), "lights.png", Png, "image/png");
        Assert.Equal(HttpStatusCode.Created, upload.StatusCode);
        var attachment = await upload.Content.ReadFromJsonAsync<JsonElement>();
        var url = attachment.GetProperty("url").GetString()!;
        article = await SaveAsync(editor, article, "The lights:\n\n" + attachment.GetProperty("markdown").GetString());
        await PublishAsync(editor, article);
        using var visitor = Visitor();

        var page = await visitor.GetStringAsync("/help/en/articles/" + article.GetProperty("slug").GetString());
        var file = await visitor.GetAsync(url);

        Assert.Contains($"<img src=\"{url}\"", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, file.StatusCode);
        Assert.Equal("image/png", file.Content.Headers.ContentType!.MediaType);
        Assert.Equal("nosniff", file.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Contains("sandbox", file.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal(Png, await file.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Images_from_anywhere_else_do_not_show_in_article_html()
    {
        using var editor = await EditorAsync(App);
        var article = await CreateAsync(editor, "Images", "x");
        var body = "![tracker](https://evil.example/pixel.png) ![own api](/api/v1/kb/articles) ![traversal](/kb/files/../api/x.png) " +
            "![data](data:image/png;base64,iVBORw0KGgo=) ![guid](/kb/files/00000000-0000-0000-0000-000000000000/a.png?x=1)";

        article = await SaveAsync(editor, article, body);

        var html = article.GetProperty("html").GetString()!;
        Assert.DoesNotContain("<img", html, StringComparison.Ordinal);
        Assert.DoesNotContain("evil.example", html, StringComparison.Ordinal);
        Assert.Contains("tracker", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Uploads_are_limited_in_size_type_and_content_and_only_editors_upload()
    {
        using var editor = await EditorAsync(App);
        using var agent = await App.AgentAsync();
        var id = Id(await CreateAsync(editor, "Limits", "x"));

        var tooLarge = await UploadAsync(editor, id, "big.png", [.. Png, .. new byte[5000]], "image/png");
        var html = await UploadAsync(editor, id, "page.html", "<script>alert(1)</script>"u8.ToArray(), "text/html");
        var svg = await UploadAsync(editor, id, "x.svg", "<svg onload=alert(1)/>"u8.ToArray(), "image/svg+xml");
        var disguised = await UploadAsync(editor, id, "page.png", "<html><script>alert(1)</script></html>"u8.ToArray(), "image/png");
        var wrongName = await UploadAsync(editor, id, "lights.exe", Png, "image/png");
        var byAgent = await UploadAsync(agent, id, "lights.png", Png, "image/png");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, html.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, svg.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, disguised.StatusCode);
        Assert.Contains("not image/png", await disguised.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, wrongName.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, byAgent.StatusCode);
        Assert.Empty((await editor.GetFromJsonAsync<JsonElement>($"/api/v1/kb/articles/{id}/attachments")).EnumerateArray());
    }

    [Fact]
    public async Task An_internal_or_draft_articles_files_are_not_served_to_visitors()
    {
        using var editor = await EditorAsync(App);
        var draft = await CreateAsync(editor, "Draft with file", "x");
        var draftUrl = (await (await UploadAsync(editor, Id(draft), "a.png", Png, "image/png")).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("url").GetString()!;
        var secret = await PublishAsync(editor, await CreateAsync(editor, "Internal with file", "x", visibility: "internal"));
        var secretUrl = (await (await UploadAsync(editor, Id(secret), "b.pdf", "%PDF-1.4 test"u8.ToArray(), "application/pdf")).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("url").GetString()!;
        using var visitor = Visitor();
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);

        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync(draftUrl)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync(secretUrl)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await agent.GetAsync(draftUrl)).StatusCode);
        var pdf = await agent.GetAsync(secretUrl);
        Assert.Equal(HttpStatusCode.OK, pdf.StatusCode);
        Assert.Equal("attachment", pdf.Content.Headers.ContentDisposition!.DispositionType);
        Assert.Contains("private", pdf.Headers.CacheControl!.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync(secretUrl.Replace("b.pdf", "other.pdf", StringComparison.Ordinal))).StatusCode);
    }
}
