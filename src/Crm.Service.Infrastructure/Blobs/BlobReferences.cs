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
    public static readonly SemaphoreSlim Gate = new(1, 1);

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
}
