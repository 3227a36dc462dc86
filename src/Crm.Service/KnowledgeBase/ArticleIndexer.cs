using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Search;

namespace Crm.Service.KnowledgeBase;

/// <summary>
/// Keeps the search index in step with the store through the change feed (consumer "search-articles"): for each
/// changed article it reads the current row and upserts it, or deletes it from the index when the row is gone.
/// Re-reading the current state makes a repeated change harmless, and because the feed's cursor moves only after
/// this returns (the index commits first), a crash between the store's commit and the index update is repaired by
/// handing the same changes again after the restart. The cursor is named after the index's identity
/// ("search-articles:lucene:/var/lib/crm/search"): an index that was not written for a while (another engine or
/// folder was in use) keeps its own older cursor and is caught up, or rebuilt when the feed was pruned past it.
/// </summary>
public sealed class ArticleIndexer(KnowledgeBaseStore store, ISearchIndex index, ChangeConsumerGates gates,
    Microsoft.Extensions.Options.IOptions<ChangeFeedOptions> feedOptions) : IChangeConsumer
{
    public const string NamePrefix = "search-articles:";
    private readonly TaskCompletionSource _checked = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Name => NamePrefix + index.Identity;

    /// <summary>Called by <see cref="ReindexService"/> once it has decided at start whether the index needs a rebuild:
    /// until then no change is handled, so the cursor it inspects is the one the index was last written with.</summary>
    internal void StartChecked() => _checked.TrySetResult();

    /// <summary>Changes after the saved cursor were pruned before this index got them (review LE1): rebuilt from the store.</summary>
    public async Task<bool> ResetAsync(CancellationToken cancellationToken)
    {
        await _checked.Task.WaitAsync(cancellationToken);
        await gates.RebuildAsync(Name, cancellationToken);
        return true;
    }

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        await _checked.Task.WaitAsync(cancellationToken);
        var ids = changes.Where(c => c.Entity == ArticleChanges.Entity).Select(c => c.EntityId).Distinct(StringComparer.Ordinal).ToList();
        // A short batch: the feed is caught up and a burst of writes (if any) is over. The engine may compact the index
        // in the background (Lucene merges its segments: each search pays per segment; docs/benchmarks.md).
        if (changes.Count < feedOptions.Value.BatchSize)
            _ = index.OptimizeAsync(CancellationToken.None);
        if (ids.Count == 0)
            return;
        await SyncAsync(ids, cancellationToken);
        // The index's version marker: with the documents durable, it now reflects the feed up to here (a restored
        // older copy carries an older marker, which ReindexService compares with the store at start).
        var applied = changes.Max(c => c.Sequence);
        await index.MarkAppliedAsync(applied, cancellationToken);
        // ... and the store records it, outside the pruned feed (an owed rebuild is left pending: see ReindexService).
        await gates.RecordAppliedAsync(Name, applied, cancellationToken);
    }

    /// <summary>Makes the index hold exactly the store's current state of these articles.</summary>
    internal async Task SyncAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        var categories = await store.CategoriesAsync(cancellationToken);
        var upserts = new List<SearchDocument>();
        var deletes = new List<string>();
        var found = new List<ArticleRecord>();
        foreach (var id in ids)
        {
            var article = Guid.TryParse(id, out var guid) ? await store.GetAsync(guid, cancellationToken) : null;
            if (article is null)
                deletes.Add(id);
            else
                found.Add(article);
        }
        var attachments = await store.AttachmentTextsAsync([.. found.Select(a => a.Id)], cancellationToken);
        upserts.AddRange(found.Select(a => ToDocument(a, categories, attachments.GetValueOrDefault(a.Id))));
        await index.DeleteAsync(deletes, cancellationToken);
        await index.UpsertAsync(upserts, cancellationToken);
    }

    /// <summary>The article's document; the text of its text attachments follows the body, so agents find words inside them.</summary>
    public static SearchDocument ToDocument(ArticleRecord article, IReadOnlyList<CategoryRecord> categories, string? attachmentText = null) =>
        new(article.Id.ToString("D"), article.Language, article.Title,
            string.IsNullOrEmpty(attachmentText) ? article.BodyText : article.BodyText + "\n\n" + attachmentText, article.Visibility, article.Status, article.Slug,
            [.. KnowledgeBaseStore.Path(categories, article.CategoryId).Select(c => c.Id.ToString("D"))], article.Tags, article.UpdatedAt);
}
