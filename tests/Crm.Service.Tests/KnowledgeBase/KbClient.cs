using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>Knowledge-base calls the tests make through the real API.</summary>
internal static class KbClient
{
    public static async Task<HttpClient> KeyAsync(CrmApp app, string role, string name)
    {
        using var admin = app.Admin();
        var response = await admin.PostAsJsonAsync("/api/v1/admin/api-keys", new { name, role });
        response.EnsureSuccessStatusCode();
        var key = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString();
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    public static Task<HttpClient> EditorAsync(CrmApp app, string name = "editor-1") => KeyAsync(app, "knowledge-editor", name);

    public static async Task<JsonElement> CreateAsync(HttpClient editor, string title, string body, string language = "en", string visibility = "public", object? extra = null)
    {
        var response = await editor.PostAsJsonAsync("/api/v1/kb/articles", new { language, title, body, visibility, tags = new[] { "howto" } });
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public static async Task<JsonElement> PublishAsync(HttpClient editor, JsonElement article)
    {
        var response = await editor.PostAsJsonAsync($"/api/v1/kb/articles/{Id(article)}/publish", new { version = Version(article) });
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public static string Id(JsonElement article) => article.GetProperty("id").GetString()!;

    public static int Version(JsonElement article) => article.GetProperty("version").GetInt32();

    public static async Task<List<string>> SearchIdsAsync(HttpClient client, string query)
    {
        var response = await client.GetAsync("/api/v1/kb/search?q=" + Uri.EscapeDataString(query));
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return [.. body.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("id").GetString()!)];
    }

    /// <summary>Waits until the index (fed by the change feed) answers <paramref name="query"/> with exactly <paramref name="ids"/>.</summary>
    public static Task<List<string>> WaitForHitsAsync(HttpClient client, string query, params string[] ids) =>
        Eventually.WaitForAsync(() => SearchIdsAsync(client, query), found => found.Order().SequenceEqual(ids.Order()), what: $"search '{query}' → [{string.Join(", ", ids)}]");
}
