using Crm.Service.Infrastructure.Store;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.CustomerEvents;

/// <summary>Something that happened to a customer in another system (an order, a purchase, a sign-up), posted through
/// <c>POST /api/v1/customers/{id}/events</c> and shown in the customer's timeline.</summary>
public sealed class CustomerEventRecord
{
    public Guid Id { get; set; }
    public Guid CustomerId { get; set; }
    /// <summary>The sender's own id of the event: a repeat with the same id is the same event (idempotent).</summary>
    public required string ClientEventId { get; set; }
    public required string Type { get; set; }
    public DateTimeOffset At { get; set; }
    public required string Title { get; set; }
    /// <summary>An amount in minor units is the sender's business; stored as given (decimal text), with its currency.</summary>
    public decimal? Amount { get; set; }
    public string? Currency { get; set; }
    public string? Link { get; set; }
    /// <summary>Free JSON object from the sender (at most <see cref="CustomerEventStore.MaxDataBytes"/>), shown as text.</summary>
    public string? Data { get; set; }
    /// <summary>SHA-256 of the request body's fields, to tell a retry from a different event reusing an id.</summary>
    public required string Fingerprint { get; set; }
    public required string PostedBy { get; set; }
    public DateTimeOffset ReceivedAt { get; set; }
}

public sealed record CustomerEventView(Guid Id, string ClientEventId, string Type, DateTimeOffset At, string Title, decimal? Amount, string? Currency, string? Link, string? Data, DateTimeOffset ReceivedAt);

public enum StoredEvent
{
    Created,
    /// <summary>The same event again (same id, same content): nothing stored.</summary>
    Repeated,
    /// <summary>The id is taken by an event with other content.</summary>
    Conflict,
}

public sealed class CustomerEventStore(IDbContextFactory<CrmDbContext> contexts)
{
    public const int MaxDataBytes = 16 * 1024;

    /// <summary>Stores an event once per (customer, id). <see cref="CustomerEventRecord.CustomerId"/> is set to the customer
    /// the event belongs to, read in the insert's own write transaction: a customer merged meanwhile passes it on to the
    /// one it was merged into (review FX8), so the caller answers with the record's customer, not the one it read.</summary>
    public async Task<(StoredEvent Outcome, CustomerEventView Event)> AddAsync(CustomerEventRecord record, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // BEGIN IMMEDIATE (EF's SQLite default): the owner read and the insert hold the write lock, so no merge commits between.
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        record.CustomerId = await MergedCustomerContent.OwnerAsync(db, record.CustomerId, cancellationToken);
        if (await FindAsync(db, record.CustomerId, record.ClientEventId, cancellationToken) is { } existing)
            return (existing.Fingerprint == record.Fingerprint ? StoredEvent.Repeated : StoredEvent.Conflict, View(existing));
        db.CustomerEvents.Add(record);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return (StoredEvent.Created, View(record));
        }
        catch (DbUpdateException ex) when (ex.InnerException is SqliteException { SqliteErrorCode: 19 })
        {
            // Two copies raced: the unique index kept one; answer like a repeat.
            await using var again = await contexts.CreateDbContextAsync(cancellationToken);
            var winner = (await FindAsync(again, record.CustomerId, record.ClientEventId, cancellationToken))!;
            return (winner.Fingerprint == record.Fingerprint ? StoredEvent.Repeated : StoredEvent.Conflict, View(winner));
        }
    }

    /// <summary>
    /// Stores an event whose <see cref="CustomerEventRecord.ClientEventId"/> is one across all customers (a call's
    /// Idempotency-Key, review CS3): the id goes into RequestKeys in the same commit, so a retry finds the event even
    /// when it names another customer or a customer merge has moved it. Answers the stored event and whether it is new;
    /// <c>Stored</c> is null when the id is taken by something that is not an event. As in <see cref="AddAsync"/>, the
    /// record's customer is re-read in the insert's transaction and follows a merge that committed meanwhile (FX8).
    /// </summary>
    public async Task<(CustomerEventRecord? Stored, bool Created)> AddOnceAsync(CustomerEventRecord record, CancellationToken cancellationToken)
    {
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            record.CustomerId = await MergedCustomerContent.OwnerAsync(db, record.CustomerId, cancellationToken);
            if (await FindOnceAsync(db, record, cancellationToken) is { } existing)
                return (existing.Event, false);
            db.CustomerEvents.Add(record);
            db.RequestKeys.Add(new Grains.Records.RequestKeyRecord { Key = record.ClientEventId, At = record.ReceivedAt });
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                return (record, true);
            }
            catch (DbUpdateException ex) when (ex.InnerException is SqliteException { SqliteErrorCode: 19 })
            {
                // Two copies raced, or the id was used before: answer with what holds it.
            }
        }
        await using var again = await contexts.CreateDbContextAsync(cancellationToken);
        return ((await FindOnceAsync(again, record, cancellationToken))?.Event, false);
    }

    /// <summary>The event holding a once-only id: by the global key (a scan of the id, only for a key already used), or,
    /// for an event stored before such keys, on the same customer.</summary>
    private sealed record Holder(CustomerEventRecord? Event);

    private static async Task<Holder?> FindOnceAsync(CrmDbContext db, CustomerEventRecord record, CancellationToken cancellationToken)
    {
        if (await db.RequestKeys.AsNoTracking().AnyAsync(k => k.Key == record.ClientEventId, cancellationToken))
            return new(await db.CustomerEvents.AsNoTracking().Where(e => e.ClientEventId == record.ClientEventId).OrderBy(e => e.Id).FirstOrDefaultAsync(cancellationToken));
        return await FindAsync(db, record.CustomerId, record.ClientEventId, cancellationToken) is { } earlier ? new(earlier) : null;
    }

    public static CustomerEventView ToView(CustomerEventRecord e) => View(e);

    /// <summary>The customer's events, newest first (the latest <paramref name="count"/>).</summary>
    public async Task<IReadOnlyList<CustomerEventView>> LatestAsync(Guid customerId, int count, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = await db.CustomerEvents.AsNoTracking().Where(e => e.CustomerId == customerId)
            .OrderByDescending(e => e.At).ThenByDescending(e => e.Id).Take(count).ToListAsync(cancellationToken);
        return [.. rows.Select(View)];
    }

    private static Task<CustomerEventRecord?> FindAsync(CrmDbContext db, Guid customerId, string clientEventId, CancellationToken cancellationToken) =>
        db.CustomerEvents.AsNoTracking().FirstOrDefaultAsync(e => e.CustomerId == customerId && e.ClientEventId == clientEventId, cancellationToken);

    private static CustomerEventView View(CustomerEventRecord e) => new(e.Id, e.ClientEventId, e.Type, e.At, e.Title, e.Amount, e.Currency, e.Link, e.Data, e.ReceivedAt);
}
