using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Queries;

/// <summary>One (tag, ticket) pair, with the ticket's UpdatedAt copied in, so a tag's queue reads
/// (Tag, UpdatedAt, TicketNumber) in order instead of walking every ticket and parsing its JSON tags.</summary>
public sealed class TicketTagRecord
{
    public long TicketNumber { get; set; }
    public required string Tag { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>One (channel account, ticket) pair: the ticket holds a message of that channel. Same idea as <see cref="TicketTagRecord"/>.</summary>
public sealed class TicketChannelRecord
{
    public long TicketNumber { get; set; }
    public required string ChannelAccountId { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>
/// The queue filters' projections (review C5). They are derived rows, rebuilt for every ticket a transaction touched,
/// inside that transaction, after its rows are saved: a reader never sees a tag or channel row disagree with its ticket.
/// Rebuilding a ticket's rows (instead of patching them) keeps merges, splits and withdrawals right without a rule each.
/// </summary>
internal static class TicketProjections
{
    public static void Configure(ModelBuilder model)
    {
        model.Entity<TicketTagRecord>(e =>
        {
            e.ToTable("TicketTags");
            e.HasKey(x => new { x.TicketNumber, x.Tag });
            e.HasIndex(x => new { x.Tag, x.UpdatedAt, x.TicketNumber });
        });
        model.Entity<TicketChannelRecord>(e =>
        {
            e.ToTable("TicketChannels");
            e.HasKey(x => new { x.TicketNumber, x.ChannelAccountId });
            e.HasIndex(x => new { x.ChannelAccountId, x.UpdatedAt, x.TicketNumber });
        });
    }

    /// <summary>Rebuilds the rows of the given tickets from Tickets and Messages (a ticket that is gone loses its rows).</summary>
    public static async Task RefreshAsync(CrmDbContext db, IReadOnlyCollection<long> numbers)
    {
        if (numbers.Count == 0)
            return;
        // Numbers are longs from our own write sets, never user text; a JSON array keeps it one statement per table.
        var list = "[" + string.Join(',', numbers) + "]";
        await db.Database.ExecuteSqlAsync($"""
            DELETE FROM TicketTags WHERE TicketNumber IN (SELECT value FROM json_each({list}));
            """);
        await db.Database.ExecuteSqlAsync($"""
            INSERT OR IGNORE INTO TicketTags (TicketNumber, Tag, UpdatedAt)
            SELECT t.Number, j.value, t.UpdatedAt FROM Tickets t, json_each(t.Tags) j
            WHERE t.Number IN (SELECT value FROM json_each({list})) AND json_valid(t.Tags) AND j.type = 'text';
            """);
        await db.Database.ExecuteSqlAsync($"""
            DELETE FROM TicketChannels WHERE TicketNumber IN (SELECT value FROM json_each({list}));
            """);
        await db.Database.ExecuteSqlAsync($"""
            INSERT OR IGNORE INTO TicketChannels (TicketNumber, ChannelAccountId, UpdatedAt)
            SELECT DISTINCT m.TicketNumber, m.ChannelAccountId, t.UpdatedAt FROM Messages m JOIN Tickets t ON t.Number = m.TicketNumber
            WHERE m.TicketNumber IN (SELECT value FROM json_each({list})) AND m.ChannelAccountId IS NOT NULL;
            """);
    }

    /// <summary>Builds the projections once for a store that had tickets before they existed.</summary>
    public static async Task BackfillAsync(CrmDbContext db)
    {
        const string marker = "projection:ticket-tags-channels";
        if (await db.Sequences.AnyAsync(s => s.Name == marker))
            return;
        await using var transaction = await db.Database.BeginTransactionAsync();
        await db.Database.ExecuteSqlRawAsync("""
            INSERT OR IGNORE INTO TicketTags (TicketNumber, Tag, UpdatedAt)
            SELECT t.Number, j.value, t.UpdatedAt FROM Tickets t, json_each(t.Tags) j WHERE json_valid(t.Tags) AND j.type = 'text';
            INSERT OR IGNORE INTO TicketChannels (TicketNumber, ChannelAccountId, UpdatedAt)
            SELECT DISTINCT m.TicketNumber, m.ChannelAccountId, t.UpdatedAt FROM Messages m JOIN Tickets t ON t.Number = m.TicketNumber
            WHERE m.ChannelAccountId IS NOT NULL;
            """);
        db.Sequences.Add(new SequenceRecord { Name = marker, Next = 1 });
        await db.SaveChangesAsync();
        await transaction.CommitAsync();
    }
}
