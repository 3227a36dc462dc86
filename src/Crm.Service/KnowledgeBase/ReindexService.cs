using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Search;

namespace Crm.Service.KnowledgeBase;

/// <summary>
/// Rebuilds the articles' search index from the store (<see cref="IndexRebuildService"/>). On start it rebuilds by
/// itself when the store holds articles and the index is empty (a deleted folder, a new Elasticsearch cluster), has no
/// cursor of its own, the feed was pruned past its cursor, or its version marker is behind the article changes its
/// cursor says it handled (a restored older copy).
/// </summary>
public sealed class ReindexService(KnowledgeBaseStore store, ISearchIndex index, ArticleIndexer indexer, IChangeFeed feed, ChangeConsumerGates gates,
    Crm.Connectors.Abstractions.ConnectorLeases leases, TimeProvider time, ILogger<ReindexService> logger)
    : IndexRebuildService(index, indexer.Name, indexer.StartChecked, feed, gates, leases, time, logger)
{
    protected override string IndexName => "search index";

    protected override string ReindexEndpoint => "/api/v1/admin/kb/reindex";

    protected override Task<int> CountAsync(CancellationToken cancellationToken) => store.CountAsync(cancellationToken);

    protected override async IAsyncEnumerable<IReadOnlyList<SearchDocument>> PagesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var categories = await store.CategoriesAsync(cancellationToken);
        await foreach (var page in store.AllAsync(PageSize, cancellationToken))
        {
            var attachments = await store.AttachmentTextsAsync([.. page.Select(a => a.Id)], cancellationToken);
            yield return [.. page.Select(a => ArticleIndexer.ToDocument(a, categories, attachments.GetValueOrDefault(a.Id)))];
        }
    }

    protected override async Task<string?> RebuildReasonAsync(CancellationToken cancellationToken)
    {
        var recorded = await Gates.AppliedAsync(ConsumerName, cancellationToken);
        if (recorded == ChangeConsumerGates.RebuildOwed)
            return "A rebuild of the search index found necessary earlier has not completed";
        if (await store.CountAsync(cancellationToken) == 0)
            return null;
        // What the store recorded as the index's marker; before records were kept, the newest article change the
        // cursor passed (the feed's pruning can remove that one).
        return await CommonRebuildReasonAsync(async cursor => recorded ?? await store.LastArticleChangeAsync(cursor, cancellationToken), cancellationToken);
    }
}
