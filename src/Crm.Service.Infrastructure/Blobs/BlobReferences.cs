using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Blobs;

/// <summary>
/// Every table that names a blob, in one place: blobs are content-addressed, so the same bytes may be a message's raw
/// source, a mail attachment, a quarantined mail and a knowledge-base attachment at once, and a blob is deleted only
/// when none of them names it. Writers that store a blob and then the row naming it (knowledge-base uploads) hold
/// <see cref="Gate"/> across both, as the deleters do across check and delete, so a delete can't remove bytes a row is
/// about to name (the blob store's put returns early when the file exists).
/// </summary>
public static class BlobReferences
{
    /// <summary>The same gate the ticket grain holds across a reply's blob puts and commit.</summary>
    public static SemaphoreSlim Gate => BlobGate.Semaphore;

    public static async Task<bool> AnyAsync(CrmDbContext db, string sha256, CancellationToken cancellationToken) =>
        await db.QuarantinedMail.AnyAsync(q => q.BlobSha256 == sha256, cancellationToken)
        || await db.RawSources.AnyAsync(r => r.BlobSha256 == sha256, cancellationToken)
        || await db.Attachments.AnyAsync(a => a.Sha256 == sha256, cancellationToken)
        || await db.Set<ArticleAttachmentRecord>().AnyAsync(a => a.Sha256 == sha256, cancellationToken)
        || await db.CustomerDocuments.AnyAsync(d => d.Sha256 == sha256, cancellationToken);

    /// <summary>Deletes those of <paramref name="hashes"/> that no row names any more; returns how many went.</summary>
    public static async Task<int> DeleteUnreferencedAsync(CrmDbContext db, IBlobStore blobs, IEnumerable<string?> hashes, CancellationToken cancellationToken)
    {
        var deleted = 0;
        await Gate.WaitAsync(cancellationToken);
        try
        {
            foreach (var sha256 in hashes.OfType<string>().Distinct(StringComparer.Ordinal))
                if (!await AnyAsync(db, sha256, cancellationToken) && blobs.Delete(sha256))
                    deleted++;
        }
        finally
        {
            Gate.Release();
        }
        return deleted;
    }

    /// <summary>
    /// Deletes blobs no row names (a crash between a blob's put and its row's commit leaves one), except those written
    /// after <paramref name="writtenBefore"/>: mail ingest (attachments, raw sources, quarantined mail) stores its bytes
    /// before the row that names them without holding <see cref="Gate"/>, so a young blob may belong to a message being
    /// committed right now (review R4). Every table of <see cref="AnyAsync"/> is checked, mail's included.
    /// </summary>
    public static async Task<int> SweepOrphansAsync(CrmDbContext db, IBlobStore blobs, DateTimeOffset writtenBefore, CancellationToken cancellationToken)
    {
        var old = blobs.List().Where(b => b.WrittenAt < writtenBefore).Select(b => b.Sha256).ToList();
        var deleted = 0;
        foreach (var chunk in old.Chunk(200))
        {
            await Gate.WaitAsync(cancellationToken);
            try
            {
                foreach (var sha256 in chunk)
                    if (!await AnyAsync(db, sha256, cancellationToken) && blobs.Delete(sha256))
                        deleted++;
            }
            finally
            {
                Gate.Release();
            }
        }
        return deleted;
    }
}

/// <summary>Runs <see cref="BlobReferences.SweepOrphansAsync"/> every <see cref="StoreOptions.BlobSweepInterval"/>
/// (zero: never), sparing blobs younger than <see cref="StoreOptions.BlobSweepGrace"/>.</summary>
internal sealed class BlobSweepService(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, IBlobStore blobs,
    Microsoft.Extensions.Options.IOptions<StoreOptions> options, TimeProvider time, Microsoft.Extensions.Logging.ILogger<BlobSweepService> logger)
    : Microsoft.Extensions.Hosting.BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.BlobSweepInterval;
        if (interval <= TimeSpan.Zero)
            return;
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(interval, time, stoppingToken);
            try
            {
                await initializer.EnsureInitializedAsync(stoppingToken);
                await using var db = await contexts.CreateDbContextAsync(stoppingToken);
                var deleted = await BlobReferences.SweepOrphansAsync(db, blobs, time.GetUtcNow() - options.Value.BlobSweepGrace, stoppingToken);
                if (deleted > 0)
                    Microsoft.Extensions.Logging.LoggerExtensions.LogInformation(logger, "Deleted {Count} blobs no row names.", deleted);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(logger, e, "The blob orphan sweep failed; it runs again at the next interval.");
            }
        }
    }
}
