using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Search;

namespace Crm.Service.KnowledgeBase;

/// <summary>Where a reindex stands, for the admin API and the console.</summary>
public sealed record ReindexProgress(string State, int Total, int Done, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Error);

/// <summary>
/// Rebuilds the search index from the store: every article into a new index, then an atomic swap (searches keep
/// answering from the old one meanwhile). Changes committed while it ran went to the old index, so after the swap
/// the articles the feed names since the rebuild began are synced again. One rebuild at a time. On start, an empty
/// index next to a store with articles (a deleted index folder, a new Elasticsearch cluster) is rebuilt by itself.
/// </summary>
public sealed class ReindexService(KnowledgeBaseStore store, ISearchIndex index, ArticleIndexer indexer, IChangeFeed feed, TimeProvider time,
    ILogger<ReindexService> logger) : BackgroundService
{
    private const int PageSize = 500;
    private readonly object _gate = new();
    private ReindexProgress _progress = new("idle", 0, 0, null, null, null);
    private Task? _running;

    public ReindexProgress Progress { get { lock (_gate) return _progress; } }

    /// <summary>Starts a rebuild in the background, or returns false when one is already running.</summary>
    public bool TryStart(out Task running)
    {
        lock (_gate)
        {
            if (_running is { IsCompleted: false } current)
            {
                running = current;
                return false;
            }
            _progress = new("running", 0, 0, time.GetUtcNow(), null, null);
            running = _running = Task.Run(() => RunCoreAsync(CancellationToken.None));
            return true;
        }
    }

    /// <summary>Runs a rebuild to the end (the --reindex command), reporting progress as it goes.</summary>
    public async Task<ReindexProgress> RunAsync(IProgress<ReindexProgress>? report, CancellationToken cancellationToken)
    {
        lock (_gate)
            _progress = new("running", 0, 0, time.GetUtcNow(), null, null);
        await RunCoreAsync(cancellationToken, report);
        return Progress;
    }

    private async Task RunCoreAsync(CancellationToken cancellationToken, IProgress<ReindexProgress>? report = null)
    {
        try
        {
            var from = await feed.LastSequenceAsync(cancellationToken);
            var total = await store.CountAsync(cancellationToken);
            Update(p => p with { Total = total }, report);
            var categories = await store.CategoriesAsync(cancellationToken);
            await using (var rebuild = await index.BeginRebuildAsync(cancellationToken))
            {
                await foreach (var page in store.AllAsync(PageSize, cancellationToken))
                {
                    await rebuild.AddAsync([.. page.Select(a => ArticleIndexer.ToDocument(a, categories))], cancellationToken);
                    Update(p => p with { Done = p.Done + page.Count }, report);
                }
                await rebuild.CompleteAsync(cancellationToken);
            }
            // Catch up with what changed while the new index was filling (it went to the old one).
            for (var after = from; ;)
            {
                var changes = await feed.ReadAsync(after, 1000, cancellationToken);
                if (changes.Count == 0)
                    break;
                await indexer.HandleAsync(changes, cancellationToken);
                after = changes[^1].Sequence;
            }
            Update(p => p with { State = "completed", FinishedAt = time.GetUtcNow() }, report);
            logger.LogInformation("Search index rebuilt from {Count} articles ({Engine}).", Progress.Done, index.Engine);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Rebuilding the search index failed; the previous index is still in use.");
            Update(p => p with { State = "failed", FinishedAt = time.GetUtcNow(), Error = e.Message }, report);
        }
    }

    private void Update(Func<ReindexProgress, ReindexProgress> change, IProgress<ReindexProgress>? report)
    {
        ReindexProgress now;
        lock (_gate)
            now = _progress = change(_progress);
        report?.Report(now);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            if (await index.CountAsync(stoppingToken) == 0 && await store.CountAsync(stoppingToken) > 0)
            {
                logger.LogWarning("The search index is empty but the store holds articles: rebuilding it.");
                TryStart(out _);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "Could not check whether the search index needs a rebuild; POST /api/v1/admin/kb/reindex rebuilds it by hand.");
        }
    }
}
