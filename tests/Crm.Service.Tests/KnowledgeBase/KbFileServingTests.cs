using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>Serving and removing attachment files: their own rate limit (review B4), bytes deleted with the last row
/// naming them (B5), and no shared caching of a signed-in reader's response (B6). Default settings on purpose.</summary>
public sealed class KbFileServingTests : AppTest
{
    /// <summary>A 1×1 PNG.</summary>
    private static readonly byte[] Png = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==");

    private static async Task<JsonElement> UploadAsync(HttpClient client, string articleId, string name, byte[] bytes, string type = "image/png")
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        var response = await client.PutAsync($"/api/v1/kb/articles/{articleId}/attachments/{Uri.EscapeDataString(name)}", content);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private string BlobPath(byte[] bytes)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        return Path.Combine(App.Services.GetRequiredService<IOptions<StoreOptions>>().Value.BlobDirectory, hash[..2], hash[2..4], hash);
    }

    [Fact]
    public async Task An_article_with_many_images_loads_them_all_for_one_visitor_and_help_search_still_answers()
    {
        using var editor = await EditorAsync(App);
        var article = await CreateAsync(editor, "Setup in 25 steps", "Screenshots follow.");
        var urls = new List<string>();
        for (var i = 0; i < 25; i++)
            urls.Add((await UploadAsync(editor, Id(article), $"step{i}.png", Png)).GetProperty("url").GetString()!);
        await PublishAsync(editor, article);
        using var visitor = App.CreateClient();

        var statuses = new List<HttpStatusCode>();
        foreach (var url in urls)
            statuses.Add((await visitor.GetAsync(url)).StatusCode);
        var search = await visitor.GetAsync("/help/en/search?q=setup");

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(HttpStatusCode.OK, search.StatusCode);
    }

    [Fact]
    public async Task Removing_an_attachment_or_its_article_deletes_the_bytes_unless_another_attachment_names_them()
    {
        using var editor = await EditorAsync(App);
        var first = await CreateAsync(editor, "Invoice sample", "See the file.");
        var second = await CreateAsync(editor, "Another sample", "Same file.");
        var secret = "Customer: jane@example.com\n"u8.ToArray();
        var shared = "Shared bytes\n"u8.ToArray();
        var removed = await UploadAsync(editor, Id(first), "jane.txt", secret, "text/plain");
        await UploadAsync(editor, Id(first), "shared.txt", shared, "text/plain");
        var kept = await UploadAsync(editor, Id(second), "shared.txt", shared, "text/plain");
        Assert.True(File.Exists(BlobPath(secret)));

        var deleted = await editor.DeleteAsync($"/api/v1/kb/articles/{Id(first)}/attachments/{removed.GetProperty("id").GetString()}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.False(File.Exists(BlobPath(secret)));

        var current = await (await editor.GetAsync($"/api/v1/kb/articles/{Id(first)}")).Content.ReadFromJsonAsync<JsonElement>();
        using (var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/kb/articles/{Id(first)}"))
        {
            request.Headers.IfMatch.Add(new EntityTagHeaderValue($"\"{Version(current)}\""));
            Assert.Equal(HttpStatusCode.NoContent, (await editor.SendAsync(request)).StatusCode);
        }
        // The second article still names the shared bytes, and serves them.
        Assert.True(File.Exists(BlobPath(shared)));
        await PublishAsync(editor, second);
        using var visitor = App.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync(kept.GetProperty("url").GetString())).StatusCode);
    }

    [Fact]
    public async Task A_public_image_answered_to_a_signed_in_reader_is_not_cacheable_by_shared_caches()
    {
        using var editor = await EditorAsync(App);
        var article = await CreateAsync(editor, "Router lights", "Draft.");
        var url = (await UploadAsync(editor, Id(article), "lights.png", Png)).GetProperty("url").GetString()!;
        await PublishAsync(editor, article);
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var visitor = App.CreateClient();

        var signedIn = await agent.GetAsync(url);
        var anonymous = await visitor.GetAsync(url);

        Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);
        Assert.DoesNotContain("public", signedIn.Headers.CacheControl!.ToString(), StringComparison.Ordinal);
        Assert.True(signedIn.Headers.CacheControl.Private);
        Assert.True(anonymous.Headers.CacheControl!.Public);
        Assert.True(anonymous.Headers.CacheControl.MaxAge <= TimeSpan.FromMinutes(1), anonymous.Headers.CacheControl.ToString());
    }
}
