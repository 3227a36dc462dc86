using System.Net;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.Playwright;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>The editor's upload control in a real browser (Debian chromium): a chosen image is uploaded to the article,
/// its Markdown is inserted where the cursor is, the live preview shows it, and a refused file says why.</summary>
public sealed class KbUploadBrowserTests
{
    /// <summary>A 1×1 PNG.</summary>
    private static readonly byte[] Png = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==");

    [Fact]
    public async Task An_editor_uploads_an_image_from_the_edit_page_and_it_is_inserted_previewed_and_published()
    {
        using var data = new TempDirectory();
        var port = FreePorts.Next();
        var baseUrl = $"http://127.0.0.1:{port}";
        await using var app = new CrmApp(data.Path);
        app.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        app.StartServer();
        await ConsoleBrowser.CreateUserAsync(app, "kb@example.com", ConsoleRoles.KnowledgeEditor);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(60_000);
        await page.GotoAsync(baseUrl + "/Kb/Edit");
        await page.SignInAsync("kb@example.com", new Regex("/Kb/Edit"), "#Title");
        Assert.Equal(0, await page.Locator("#kb-file").CountAsync());
        await page.Locator("#Title").FillAsync("Router lights");
        await page.Locator("#Visibility").SelectOptionAsync("public");
        await page.Locator("#kb-body").FillAsync("Before the picture.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await page.ArrivedAtAsync(new Regex("/Kb/Edit/[0-9a-f-]{36}$"), "#kb-file");
        var articleId = page.Url.Split('/')[^1];

        // The cursor after "Before", then the file chosen: its Markdown goes there.
        await page.Locator("#kb-body").EvaluateAsync("b => { b.focus(); b.setSelectionRange(6, 6); }");
        await page.Locator("#kb-file").SetInputFilesAsync(new FilePayload { Name = "lights.png", MimeType = "image/png", Buffer = Png });
        await page.Locator("#kb-upload-status", new() { HasTextString = "Inserted lights.png" }).WaitForAsync();
        var body = await page.Locator("#kb-body").InputValueAsync();
        // The live preview (the server's sanitized rendering) shows the image.
        await page.Locator("#kb-preview img").WaitForAsync();
        var image = await page.Locator("#kb-preview img").GetAttributeAsync("src");
        // A page uploaded as an image is refused, and the editor is told why.
        await page.Locator("#kb-file").SetInputFilesAsync(new FilePayload { Name = "evil.png", MimeType = "image/png", Buffer = "<html><script>alert(1)</script>"u8.ToArray() });
        await page.Locator("#kb-upload-status.error").WaitForAsync();
        var refusal = await page.Locator("#kb-upload-status").TextContentAsync();

        Assert.Matches(new Regex(@"^Before\n!\[lights\\\.png\]\(/kb/files/[0-9a-f-]{36}/lights\.png\)\n the picture\.$"), body);
        Assert.Matches(new Regex("^/kb/files/[0-9a-f-]{36}/lights\\.png$"), image!);
        Assert.Contains("not image/png", refusal, StringComparison.Ordinal);
        Assert.DoesNotContain("evil", await page.Locator("#kb-body").InputValueAsync(), StringComparison.Ordinal);

        await page.GetByRole(AriaRole.Button, new() { Name = "Publish" }).ClickAsync();
        await page.Locator(".status", new() { HasTextString = "published" }).WaitForAsync();
        using var visitor = new HttpClient { BaseAddress = new Uri(baseUrl) };
        var article = await visitor.GetStringAsync("/help/en/articles/router-lights");
        Assert.Contains($"<img src=\"{image}\"", article, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync(image)).StatusCode);
        Assert.Equal(36, articleId.Length);
    }
}
