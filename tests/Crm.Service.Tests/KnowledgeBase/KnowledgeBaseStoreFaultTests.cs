using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>Faults in the store and the engine behind the knowledge base: nothing is lost and visitors get an answer (K5, K10).</summary>
public sealed class KnowledgeBaseStoreFaultTests
{
    /// <summary>Fails the SaveChanges that removes an article: a kill (or a refused version) between deleting the
    /// revisions and removing the article.</summary>
    private sealed class FailArticleDelete : SaveChangesInterceptor
    {
        public volatile bool Armed;

        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            if (Armed && eventData.Context!.ChangeTracker.Entries<ArticleRecord>().Any(e => e.State == EntityState.Deleted))
                throw new IOException("simulated crash before the delete committed");
            return base.SavingChangesAsync(eventData, result, cancellationToken);
        }
    }

    [Fact]
    public async Task K5_a_delete_that_fails_to_commit_keeps_every_revision()
    {
        using var data = new TempDirectory();
        var fault = new FailArticleDelete();
        await using var app = new CrmApp(data.Path, services: s => s.ConfigureDbContext<CrmDbContext>(o => o.AddInterceptors(fault)));
        using var editor = await EditorAsync(app);
        var article = await CreateAsync(editor, "Passwords", "One.");
        var id = Id(article);
        var v2 = await (await editor.PutAsJsonAsync($"/api/v1/kb/articles/{id}", new { title = "Passwords", body = "Two.", visibility = "public", version = 1 })).Content.ReadFromJsonAsync<JsonElement>();
        await (await editor.PutAsJsonAsync($"/api/v1/kb/articles/{id}", new { title = "Passwords", body = "Three.", visibility = "public", version = Version(v2) })).Content.ReadFromJsonAsync<JsonElement>();

        fault.Armed = true;
        using var delete = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/kb/articles/{id}");
        delete.Headers.IfMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue("\"3\""));
        var deleted = await editor.SendAsync(delete);
        fault.Armed = false;

        Assert.NotEqual(HttpStatusCode.NoContent, deleted.StatusCode);
        var revisions = await editor.GetFromJsonAsync<JsonElement>($"/api/v1/kb/articles/{id}/revisions");
        Assert.Equal([3, 2, 1], revisions.EnumerateArray().Select(r => r.GetProperty("version").GetInt32()));
    }

    [Fact]
    public async Task K10_help_search_with_elasticsearch_down_answers_a_page_that_says_so()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?>
        {
            ["Search:Engine"] = "elasticsearch",
            ["Search:Elasticsearch:Url"] = $"http://127.0.0.1:{FreePorts.Next()}",
            ["Search:Elasticsearch:Timeout"] = "00:00:05",
        });
        using var visitor = app.CreateClient();

        var response = await visitor.GetAsync("/help/en/search?q=printer");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("Search is unavailable right now", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("no-store", response.Headers.CacheControl!.ToString());
    }
}
