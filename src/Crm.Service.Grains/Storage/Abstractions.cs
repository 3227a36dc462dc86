using Crm.Service.Grains.Records;

namespace Crm.Service.Grains.Storage;

/// <summary>Raised by <see cref="ICrmStore.CommitAsync"/> when a unique key is already taken (a redelivered message, a retried reply).</summary>
public sealed class DuplicateKeyException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Raised by <see cref="ICrmStore.CommitAsync"/> when a precondition of the write set (<see cref="RequireTicketNotMerged"/>)
/// no longer holds; nothing of the set was written, and the writer decides again on what is stored now.</summary>
public sealed class StaleWriteException(string message) : Exception(message);

/// <summary>The system of record as the grains see it: durable commits and the reads a grain needs to activate.</summary>
public interface ICrmStore
{
    /// <summary>Returns once the write set is durably on disk (fsynced), never before.</summary>
    /// <exception cref="DuplicateKeyException">A row with one of the unique keys exists; nothing of the set was written.</exception>
    Task CommitAsync(WriteSet writes, CancellationToken cancellationToken = default);

    Task<TicketRecord?> FindTicketAsync(long number, CancellationToken cancellationToken = default);
    Task<ConversationRecord?> FindConversationAsync(string key, CancellationToken cancellationToken = default);
    Task<ConversationRecord?> FindConversationAsync(Guid id, CancellationToken cancellationToken = default);
    Task<CustomerRecord?> FindCustomerAsync(Guid id, CancellationToken cancellationToken = default);
    Task<IdentityRecord?> FindIdentityAsync(string key, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<IdentityRecord>> FindIdentitiesOfCustomerAsync(Guid customerId, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<long>> FindTicketNumbersOfCustomerAsync(Guid customerId, CancellationToken cancellationToken = default);
    Task<MessageRecord?> FindMessageAsync(Guid id, CancellationToken cancellationToken = default);
    Task<MessageRecord?> FindMessageByExternalIdAsync(string channelAccountId, string externalId, CancellationToken cancellationToken = default);
    Task<MessageRecord?> FindMessageByIdempotencyKeyAsync(string key, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<AttachmentRecord>> FindAttachmentsAsync(Guid messageId, CancellationToken cancellationToken = default);
    Task<ChannelAccountRecord?> FindChannelAccountAsync(string id, CancellationToken cancellationToken = default);
}

/// <summary>Hands out ticket numbers unique across the cluster.</summary>
public interface ITicketNumberAllocator
{
    Task<long> NextAsync(CancellationToken cancellationToken = default);
}

public sealed record StoredBlob(string Sha256, long Length);

/// <summary>
/// The process's blob gate: a writer that puts a blob and then commits the row naming it holds the gate across both
/// (an agent reply writes its new bytes before, ungated, and under the gate only re-puts them, a cheap existence check),
/// as the deleters hold it across their "does any row name it?" check and the delete. The blob store's put returns
/// early when the bytes exist, so without it a delete could remove bytes a row is about to name (review ER8).
/// Per process: the deleters (knowledge-base attachments, quarantine prune, orphan sweep) and the writers run on
/// every node, so a cluster relies on the orphan sweep's grace period for writers that do not hold it (mail ingest).
/// </summary>
public static class BlobGate
{
    public static readonly SemaphoreSlim Semaphore = new(1, 1);
}

/// <summary>Content-addressed, durable blob storage for attachments and large raw sources.</summary>
public interface IBlobStore
{
    /// <summary>Stores the bytes (fsynced) under their SHA-256; storing the same bytes twice keeps one copy.</summary>
    Task<StoredBlob> PutAsync(ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default);

    /// <summary>Opens a stored blob for reading, or null when no blob has that hash.</summary>
    Stream? Open(string sha256);

    /// <summary>Removes a blob; the caller has checked that no row names it any more. False when there was none.</summary>
    bool Delete(string sha256);

    /// <summary>Every stored blob with when it was last written (a put of bytes already stored counts), for the
    /// orphan sweep, which leaves young blobs alone: their row may not be committed yet.</summary>
    IEnumerable<(string Sha256, DateTimeOffset WrittenAt)> List() => [];

    /// <summary>When this blob was last written, read now (the sweep checks again just before deleting: a put since
    /// the listing made it young); null when there is no such blob or the store cannot tell.</summary>
    DateTimeOffset? WrittenAt(string sha256) => null;
}

/// <summary>
/// Durable holds on blobs a writer is about to name (rows in the shared store, so they work across nodes, where
/// <see cref="BlobGate"/> is per process): taken before the bytes are put, released after the rows naming them are
/// committed. A deleter (a knowledge-base or document delete, a quarantine prune, the orphan sweep) leaves a held blob
/// alone, and a hold waits while a delete of the same bytes is in progress, so bytes a row is about to name are never
/// removed in between (review ER8). A crash leaves a hold that expires; the orphan sweep then judges the blob by its rows.
/// </summary>
public interface IBlobHolds
{
    /// <summary>Holds the blobs with these SHA-256 hashes (lower-case hex) until the result is disposed or the hold expires.</summary>
    Task<IAsyncDisposable> HoldAsync(IReadOnlyCollection<string> sha256s, CancellationToken cancellationToken = default);
}

/// <summary>Makes untrusted HTML safe to show an agent.</summary>
public interface IHtmlSanitizer
{
    string Sanitize(string html);

    /// <summary>The readable text of an HTML body, for a plain-text version and for search.</summary>
    string ToPlainText(string html);
}

/// <summary>Wakes the outbox dispatcher after an outbound message was committed, so it leaves at once rather than at the next poll.</summary>
public interface IOutboxSignal
{
    void Notify();
}
