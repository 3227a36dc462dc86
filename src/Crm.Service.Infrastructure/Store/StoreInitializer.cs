using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Store;

/// <summary>Creates the data folder and migrates the database once, before anything reads or writes it.
/// Every store component awaits it, so start-up order between the host and the silo does not matter.</summary>
public sealed class StoreInitializer(IDbContextFactory<CrmDbContext> contexts, IOptions<StoreOptions> options, ILogger<StoreInitializer> logger)
    : IHostedService
{
    private readonly Lazy<Task<long>> _initialized = new(() => InitializeAsync(contexts, options.Value, logger));

    public Task EnsureInitializedAsync(CancellationToken cancellationToken) => _initialized.Value.WaitAsync(cancellationToken);

    /// <summary>The change feed's head when the store was ready on this node, before any component loaded its state
    /// from it: a consumer that serves this node only starts there and misses nothing that came after its load.</summary>
    public Task<long> FeedHeadAtStartAsync(CancellationToken cancellationToken) => _initialized.Value.WaitAsync(cancellationToken);

    public bool IsInitialized => _initialized.IsValueCreated && _initialized.Value.IsCompletedSuccessfully;

    Task IHostedService.StartAsync(CancellationToken cancellationToken) => EnsureInitializedAsync(cancellationToken);

    Task IHostedService.StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static async Task<long> InitializeAsync(IDbContextFactory<CrmDbContext> contexts, StoreOptions options, ILogger logger)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(options.DatabasePath)!);
        Directory.CreateDirectory(options.BlobDirectory);
        await using var db = await contexts.CreateDbContextAsync();
        // WAL is a property of the file: set once, it holds for every later connection.
        await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;");
        var pending = (await db.Database.GetPendingMigrationsAsync()).ToList();
        if (pending.Count > 0)
        {
            logger.LogInformation("Migrating {Database}: applying {Migrations}", options.DatabasePath, string.Join(", ", pending));
            await db.Database.MigrateAsync();
        }
        // Embedded mode has one silo per SQLite file, so numbers reserved but never used before a stop can be
        // handed out again: tickets stay #10001, #10002, … without gaps from restarts. "Never used" means no row
        // names the number: a conversation stores its reserved number before the ticket row exists (the pointer
        // before the thing), so a kill between the two commits leaves a number that only the conversation holds.
        // Audit rows are left out: a ticket's first audit row is committed with the ticket row itself.
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO Sequences (Name, Next) VALUES ('ticket', {options.FirstTicketNumber})
            ON CONFLICT (Name) DO UPDATE SET Next = MAX({options.FirstTicketNumber}, COALESCE((SELECT MAX(Referenced) + 1 FROM (
                SELECT MAX(Number) AS Referenced FROM Tickets
                UNION ALL SELECT MAX(TicketNumber) FROM Conversations
                UNION ALL SELECT MAX(TicketNumber) FROM Messages
                UNION ALL SELECT MAX(FollowUpOf) FROM Tickets
                UNION ALL SELECT MAX(MergedInto) FROM Tickets)), 0));
            """);
        await Queries.TicketProjections.BackfillAsync(db);
        await MergedCustomerContent.MoveLeftoversAsync(db);
        // Blob holds a crash left (expired, so they count for nothing) go at start, even with the orphan sweep off (EN6).
        await Blobs.BlobHoldSql.PruneExpiredAsync(db, CancellationToken.None);
        logger.LogInformation("Store ready at {Database}", options.DatabasePath);
        return await FeedHeadAsync(db);
    }

    /// <summary>The newest change sequence ever handed out: AUTOINCREMENT's high-water mark survives pruning, unlike
    /// MAX(Sequence) of an emptied table.</summary>
    public static Task<long> FeedHeadAsync(CrmDbContext db, CancellationToken cancellationToken = default) => db.Database
        .SqlQuery<long>($"SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'Changes'), 0) AS Value")
        .SingleAsync(cancellationToken);
}
