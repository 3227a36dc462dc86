using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Search;

namespace Crm.Service.KnowledgeBase;

/// <summary>Where a reindex stands, for the admin API and the console.</summary>
public sealed record ReindexProgress(string State, int Total, int Done, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Error);

/// <summary>
/// Rebuilds the search index from the store: every article into a new index, then an atomic swap (searches keep
/// answering from the old one meanwhile). Changes committed while it ran went to the old index, so just before the
/// swap the indexer's feed cursor is moved back, durably, to where the rebuild began: the indexer then hands those
/// changes again to the new index, with its usual retries, and a crash right after the swap cannot skip them. One
/// rebuild at a time. On start, the index is rebuilt by itself when the store holds articles and the index is empty
/// (a deleted folder, a new Elasticsearch cluster), has no cursor of its own, or the feed was pruned past its cursor.
/// </summary>
public sealed class ReindexService(KnowledgeBaseStore store, ISearchIndex index, ArticleIndexer indexer, IChangeFeed feed, ChangeConsumerGates gates,
    TimeProvider time, ILogger<ReindexService> logger) : BackgroundService
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
        var swapped = false;
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
                // What changed while the new index was filling went to the old one. With the indexer held between
                // batches, its cursor goes back to where the rebuild began (committed before the swap, so a crash
                // after the swap still leaves those changes owed), then the swap; the indexer hands them again.
                await using var pause = await gates.PauseAsync(indexer.Name, cancellationToken);
                await pause.RewindAsync(from, cancellationToken);
                await rebuild.CompleteAsync(cancellationToken);
                swapped = true;
            }
            Update(p => p with { State = "completed", FinishedAt = time.GetUtcNow() }, report);
            logger.LogInformation("Search index rebuilt from {Count} articles ({Engine}).", Progress.Done, index.Engine);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            if (swapped)
                logger.LogError(e, "The rebuilt search index is in use, but finishing the rebuild failed; the changes made meanwhile are handed to it by the change feed.");
            else
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
            if (await RebuildReasonAsync(stoppingToken) is { } reason)
            {
                logger.LogWarning("{Reason}: rebuilding the search index {Index}.", reason, index.Identity);
                TryStart(out _);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "Could not check whether the search index needs a rebuild; POST /api/v1/admin/kb/reindex rebuilds it by hand.");
        }
        finally
        {
            indexer.StartChecked();
        }
    }

    /// <summary>Why the index cannot be trusted to follow the store, or null when it can.</summary>
    private async Task<string?> RebuildReasonAsync(CancellationToken cancellationToken)
    {
        if (await store.CountAsync(cancellationToken) == 0)
            return null;
        if (await index.CountAsync(cancellationToken) == 0)
            return "The search index is empty but the store holds articles";
        if (await gates.CursorAsync(indexer.Name, cancellationToken) is not { } cursor)
            return "The search index has no change-feed cursor of its own (it was never written by this store under this name)";
        if (await gates.OldestChangeAsync(cancellationToken) is { } oldest && oldest > cursor + 1)
            return $"The change feed was pruned past the search index's cursor ({cursor}; oldest change kept {oldest}) while another index was in use";
        return null;
    }
}
