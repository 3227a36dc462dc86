using Crm.Service.Grains;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Blobs;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Documents;

/// <summary>A file attached to a customer (a contract, an invoice) on the customer 360 page. The bytes live in the
/// blob store under their SHA-256, like message attachments.</summary>
public sealed class CustomerDocumentRecord
{
    public Guid Id { get; set; }
    public Guid CustomerId { get; set; }
    public required string FileName { get; set; }
    /// <summary>Sniffed from the bytes, for the list only: downloads are always application/octet-stream.</summary>
    public required string ContentType { get; set; }
    public long Length { get; set; }
    public required string Sha256 { get; set; }
    public required string UploadedBy { get; set; }
    public DateTimeOffset UploadedAt { get; set; }
}

/// <summary>Limits of customer documents (<c>Documents</c> section).</summary>
public sealed class DocumentOptions
{
    public const string Section = "Documents";

    /// <summary>Largest document accepted, in bytes (default 10 MB).</summary>
    public long MaxBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary>Most documents one customer may have (default 100).</summary>
    public int MaxPerCustomer { get; set; } = 100;
}

public enum DocumentRefusal
{
    None,
    TooLarge,
    TooMany,
    Empty,
}

public sealed class CustomerDocumentStore(IDbContextFactory<CrmDbContext> contexts, IBlobStore blobs, IBlobHolds holds, IOptions<DocumentOptions> options, TimeProvider time)
{
    public DocumentOptions Limits => options.Value;

    public async Task<IReadOnlyList<CustomerDocumentRecord>> ListAsync(Guid customerId, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.CustomerDocuments.AsNoTracking().Where(d => d.CustomerId == customerId)
            .OrderByDescending(d => d.UploadedAt).ThenBy(d => d.Id).Take(Limits.MaxPerCustomer).ToListAsync(cancellationToken);
    }

    public async Task<CustomerDocumentRecord?> FindAsync(Guid customerId, Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.CustomerDocuments.AsNoTracking().FirstOrDefaultAsync(d => d.Id == id && d.CustomerId == customerId, cancellationToken);
    }

    public Stream? Open(CustomerDocumentRecord document) => blobs.Open(document.Sha256);

    /// <summary>Stores the bytes (fsynced) and then the row naming them, under a durable blob hold (every node's deleters
    /// leave held bytes alone, review EN3) released after the commit. The document goes to the customer that owns
    /// <paramref name="customerId"/>'s content when the row is inserted: read in the insert's own write transaction, so
    /// an upload racing a merge of that customer lands on the surviving customer (issue 17, like customer events FX8).
    /// <see cref="CustomerDocumentRecord.CustomerId"/> of the result says which.</summary>
    public async Task<(DocumentRefusal Refusal, CustomerDocumentRecord? Document)> AddAsync(Guid customerId, string? fileName, ReadOnlyMemory<byte> content,
        string actor, CancellationToken cancellationToken)
    {
        if (content.Length == 0)
            return (DocumentRefusal.Empty, null);
        if (content.Length > Limits.MaxBytes)
            return (DocumentRefusal.TooLarge, null);
        await using (var check = await contexts.CreateDbContextAsync(cancellationToken))
        {
            // Before the bytes are written (a cheap refusal); counted again below, in the insert's transaction.
            var owner = await MergedCustomerContent.OwnerAsync(check, customerId, cancellationToken);
            if (await check.CustomerDocuments.CountAsync(d => d.CustomerId == owner, cancellationToken) >= Limits.MaxPerCustomer)
                return (DocumentRefusal.TooMany, null);
        }
        await using var held = await HeldBlobs.HoldAndPutAsync(holds, blobs, [content], cancellationToken);
        var stored = held.Blobs[0];
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // BEGIN IMMEDIATE (EF's SQLite default): the owner read, the count and the insert hold the write lock, so a merge
        // either committed before (its MergedInto is read here) or commits after (and moves this row with the rest).
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var ownerNow = await MergedCustomerContent.OwnerAsync(db, customerId, cancellationToken);
        if (await db.CustomerDocuments.CountAsync(d => d.CustomerId == ownerNow, cancellationToken) >= Limits.MaxPerCustomer)
            return (DocumentRefusal.TooMany, null);
        var now = time.GetUtcNow();
        var document = new CustomerDocumentRecord
        {
            Id = Guid.CreateVersion7(now),
            CustomerId = ownerNow,
            FileName = AttachmentRules.SanitizeFileName(fileName),
            ContentType = AttachmentRules.SniffContentType(content.Span),
            Length = content.Length,
            Sha256 = stored.Sha256,
            UploadedBy = actor,
            UploadedAt = now,
        };
        db.CustomerDocuments.Add(document);
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return (DocumentRefusal.None, document);
    }

    /// <summary>Removes the row, then the bytes if nothing else names them. False when there was no such document.</summary>
    public async Task<bool> DeleteAsync(Guid customerId, Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (await db.CustomerDocuments.FirstOrDefaultAsync(d => d.Id == id && d.CustomerId == customerId, cancellationToken) is not { } document)
            return false;
        db.CustomerDocuments.Remove(document);
        await db.SaveChangesAsync(cancellationToken);
        await BlobReferences.DeleteUnreferencedAsync(db, blobs, [document.Sha256], cancellationToken);
        return true;
    }
}

public static class DocumentExtensions
{
    /// <summary>Customer documents with their limits bound from the <c>Documents</c> section.</summary>
    public static IServiceCollection AddCustomerDocuments(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DocumentOptions>().Bind(configuration.GetSection(DocumentOptions.Section))
            .Validate(o => o.MaxBytes > 0 && o.MaxPerCustomer > 0, "Documents:MaxBytes and Documents:MaxPerCustomer must be positive.");
        services.AddSingleton<CustomerDocumentStore>();
        return services;
    }
}
