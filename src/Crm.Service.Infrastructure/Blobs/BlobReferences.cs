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
    /// <summary>The same gate the ticket grain holds across a reply's blob puts and commit (per process; across nodes the
    /// durable holds of <see cref="BlobHoldSql"/> do the same).</summary>
    public static SemaphoreSlim Gate => BlobGate.Semaphore;

    /// <summary>Every column that names a blob (entity, property). <see cref="AnyAsync"/> checks exactly these, and
    /// <c>BlobSweepGateTests</c> holds the list against the EF model's <c>*Sha256</c> columns, so a new table naming
    /// blobs cannot be forgotten here (review KW15).</summary>
    public static readonly IReadOnlyList<(Type Entity, string Property)> Columns =
    [
        (typeof(Mailboxes.QuarantinedMailRecord), nameof(Mailboxes.QuarantinedMailRecord.BlobSha256)),
        (typeof(Grains.Records.RawSourceRecord), nameof(Grains.Records.RawSourceRecord.BlobSha256)),
        (typeof(Grains.Records.AttachmentRecord), nameof(Grains.Records.AttachmentRecord.Sha256)),
        (typeof(ArticleAttachmentRecord), nameof(ArticleAttachmentRecord.Sha256)),
        (typeof(Documents.CustomerDocumentRecord), nameof(Documents.CustomerDocumentRecord.Sha256)),
    ];

    /// <summary><c>*Sha256</c> columns that are not blob names: a quarantined mail's hash (for keeping a redelivery
    /// once; its bytes are named by BlobSha256) and the holds (checked by the deleters on their own).</summary>
    public static readonly IReadOnlyList<(Type Entity, string Property)> NotBlobNames =
    [
        (typeof(Mailboxes.QuarantinedMailRecord), nameof(Mailboxes.QuarantinedMailRecord.Sha256)),
        // A hold keeps deleters off while a writer's row is on its way, but names nothing once it expires.
        (typeof(BlobHoldRecord), nameof(BlobHoldRecord.Sha256)),
    ];

    public static async Task<bool> AnyAsync(CrmDbContext db, string sha256, CancellationToken cancellationToken)
    {
        foreach (var (entity, property) in Columns)
        {
            // Table and column names come from the EF model, never from input; the hash is a parameter.
            var type = db.Model.FindEntityType(entity) ?? throw new InvalidOperationException($"{entity.Name} is not in the model.");
            var table = type.GetTableName();
            var column = type.FindProperty(property)!.GetColumnName();
            var sql = "SELECT EXISTS(SELECT 1 FROM \"" + table + "\" WHERE \"" + column + "\" = {0}) AS \"Value\"";
            if (await db.Database.SqlQueryRaw<int>(sql, sha256).SingleAsync(cancellationToken) == 1)
                return true;
        }
        return false;
    }

    /// <summary>Deletes those of <paramref name="hashes"/> that no row names any more; returns how many went.</summary>
    public static async Task<int> DeleteUnreferencedAsync(CrmDbContext db, IBlobStore blobs, IEnumerable<string?> hashes, CancellationToken cancellationToken)
    {
        var deleted = 0;
        await Gate.WaitAsync(cancellationToken);
        try
        {
            foreach (var sha256 in hashes.OfType<string>().Distinct(StringComparer.Ordinal))
                if (await DeleteIfUnnamedAsync(db, blobs, sha256, null, cancellationToken))
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
        var deleted = 0;
        // The listing is streamed, and the reference check of each blob runs without the gate: a young or named blob
        // is never deleted, so only a candidate takes the gate, for its own check and delete (KW7: holding it for
        // chunks of 200 row scans stalled every upload and delete meanwhile).
        foreach (var (sha256, listedAt) in blobs.List())
        {
            if (listedAt >= writtenBefore || await AnyAsync(db, sha256, cancellationToken))
                continue;
            await Gate.WaitAsync(cancellationToken);
            try
            {
                // Under the gate, both again: the age read now (a re-put since the listing made the blob young, KW1)
                // and the rows (one may have been committed since).
                if (await DeleteIfUnnamedAsync(db, blobs, sha256, () => (blobs.WrittenAt(sha256) ?? listedAt) < writtenBefore, cancellationToken))
                    deleted++;
            }
            finally
            {
                Gate.Release();
            }
        }
        if (blobs is FileBlobStore files)
            files.DeleteStaleTemporaries(writtenBefore);
        await BlobHoldSql.PruneExpiredAsync(db, cancellationToken);
        return deleted;
    }

    /// <summary>
    /// Deletes one blob when no row names it and no writer holds it (<see cref="Grains.Storage.IBlobHolds"/>, across
    /// nodes): a delete hold is taken first (refused while a writer's hold lives; writers wait while it lives), then the
    /// rows are checked and the file deleted, then the hold released. A held blob is left for a later delete or sweep.
    /// </summary>
    internal static async Task<bool> DeleteIfUnnamedAsync(CrmDbContext db, IBlobStore blobs, string sha256, Func<bool>? stillOld, CancellationToken cancellationToken)
    {
        var hold = Guid.CreateVersion7();
        if (!await BlobHoldSql.TryHoldAsync(db, hold, sha256, deleting: true, BlobHoldSql.DeleterHoldLifetime, cancellationToken))
            return false;
        try
        {
            return (stillOld is null || stillOld()) && !await AnyAsync(db, sha256, cancellationToken) && blobs.Delete(sha256);
        }
        finally
        {
            await BlobHoldSql.ReleaseAsync(db, hold);
        }
    }
}

/// <summary>Runs <see cref="BlobReferences.SweepOrphansAsync"/> every <see cref="StoreOptions.BlobSweepInterval"/>
/// (zero: never), sparing blobs younger than <see cref="StoreOptions.BlobSweepGrace"/>.</summary>
internal sealed class BlobSweepService(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, IBlobStore blobs,
    Microsoft.Extensions.Options.IOptions<StoreOptions> options, TimeProvider time, Microsoft.Extensions.Logging.ILogger<BlobSweepService> logger)
    : Microsoft.Extensions.Hosting.BackgroundService
{
    private static readonly TimeSpan FirstSweepDelay = TimeSpan.FromMinutes(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.BlobSweepInterval;
        if (interval <= TimeSpan.Zero)
            return;
        // The first sweep soon after start, not one interval later: with daily restarts and a daily interval it never ran (KW15).
        var wait = interval < FirstSweepDelay ? interval : FirstSweepDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(wait, time, stoppingToken);
            wait = interval;
            try
            {
                await initializer.EnsureInitializedAsync(stoppingToken);
                await using var db = await contexts.CreateDbContextAsync(stoppingToken);
                // Blob ages are the file system's mtimes: compare them with the system clock, not the app's TimeProvider (KW15).
                var deleted = await BlobReferences.SweepOrphansAsync(db, blobs, DateTimeOffset.UtcNow - options.Value.BlobSweepGrace, stoppingToken);
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
