using System.Net;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.KnowledgeBase;

/// <summary>Measured alone: allocations are counted for the whole process.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationCollection
{
    public const string Name = "allocation (runs alone)";
}

/// <summary>An anonymous help-center page load reads what it shows, not every article with its bodies (review K1).</summary>
[Collection(AllocationCollection.Name)]
public sealed class HelpCenterAllocationTests : AppTest
{
    [Fact]
    public async Task K1_a_help_page_over_300_long_articles_allocates_a_fraction_of_their_bodies()
    {
        var store = App.Services.GetRequiredService<KnowledgeBaseStore>();
        var category = await store.CreateCategoryAsync("Manuals", null, null);
        var body = string.Concat(Enumerable.Repeat("Press the power button and wait for the light. ", 1_100));
        for (var i = 0; i < 300; i++)
        {
            var article = await store.CreateAsync(new ArticleDraft("en", $"Manual {i:D3}", body, ArticleVisibility.Public, i % 2 == 0 ? category.Id : null), "test");
            await store.SetStatusAsync(article.Id, article.Version, ArticleStatus.Published, "test");
        }
        // The search indexer reads every article once: let it finish before counting.
        var head = await App.QueryAsync(db => Task.FromResult(db.Changes.Max(c => c.Sequence)));
        var status = App.Services.GetRequiredService<Crm.Service.Infrastructure.Changes.ChangeFeedStatus>();
        await Eventually.WaitForAsync(() => Task.FromResult(status.Consumers.Single(c => c.Name.StartsWith("search-articles", StringComparison.Ordinal)).Cursor),
            cursor => cursor >= head, TimeSpan.FromMinutes(2), "the search indexer to catch up");
        using var visitor = App.CreateClient();
        // Warm-up: the first request compiles the page and the queries.
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync("/help/en")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync("/help/en/categories/manuals")).StatusCode);

        var before = GC.GetTotalAllocatedBytes(precise: true);
        var index = await visitor.GetAsync("/help/en");
        var categoryPage = await visitor.GetAsync("/help/en/categories/manuals");
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Equal(HttpStatusCode.OK, categoryPage.StatusCode);
        // The bodies alone are 300 × ~52,000 characters × 3 forms × 2 bytes ≈ 94 MB; a page of titles is far below 20 MB.
        Assert.True(allocated < 20 * 1024 * 1024, $"two help pages allocated {allocated / 1024 / 1024} MB");
    }
}
