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

/// <summary>Tickets one transaction touched: their tag rows are rebuilt and their channel rows' UpdatedAt moved;
/// <see cref="Channels"/> are the (ticket, channel) pairs of new messages; <see cref="Rebuild"/> the tickets whose
/// messages moved or went away, whose channel rows are rebuilt from their messages.</summary>
public sealed class ProjectionTouches : HashSet<long>
{
    public HashSet<long> Rebuild { get; } = [];

    public HashSet<(long Ticket, string Channel)> Channels { get; } = [];

    public void RebuildTicket(long number)
    {
        Add(number);
        Rebuild.Add(number);
    }
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

    /// <summary>
    /// Brings the rows of the touched tickets up to date. Tags are rebuilt from the ticket row (at most 50 per ticket).
    /// Channels are patched, not rebuilt, for the common writes (a new message adds its pair, any ticket write moves
    /// UpdatedAt): rebuilding them read every message of the ticket on every write, which made a long chat quadratic
    /// in the one writer everybody waits behind (review console2 F9). Only moves and withdrawals
    /// (<see cref="ProjectionTouches.Rebuild"/>) rebuild a ticket's channel rows from its messages.
    /// </summary>
    public static async Task RefreshAsync(CrmDbContext db, ProjectionTouches touched)
    {
        if (touched.Count == 0)
            return;
        // Numbers are longs from our own write sets, never user text; a JSON array keeps it one statement per table.
        var list = "[" + string.Join(',', touched) + "]";
        await db.Database.ExecuteSqlAsync($"""
            DELETE FROM TicketTags WHERE TicketNumber IN (SELECT value FROM json_each({list}));
            """);
        await db.Database.ExecuteSqlAsync($"""
            INSERT OR IGNORE INTO TicketTags (TicketNumber, Tag, UpdatedAt)
            SELECT t.Number, j.value, t.UpdatedAt FROM Tickets t, json_each(t.Tags) j
            WHERE t.Number IN (SELECT value FROM json_each({list})) AND json_valid(t.Tags) AND j.type = 'text';
            """);
        if (touched.Rebuild.Count > 0)
        {
            var rebuild = "[" + string.Join(',', touched.Rebuild) + "]";
            await db.Database.ExecuteSqlAsync($"""
                DELETE FROM TicketChannels WHERE TicketNumber IN (SELECT value FROM json_each({rebuild}));
                """);
            await db.Database.ExecuteSqlAsync($"""
                INSERT OR IGNORE INTO TicketChannels (TicketNumber, ChannelAccountId, UpdatedAt)
                SELECT DISTINCT m.TicketNumber, m.ChannelAccountId, t.UpdatedAt FROM Messages m JOIN Tickets t ON t.Number = m.TicketNumber
                WHERE m.TicketNumber IN (SELECT value FROM json_each({rebuild})) AND m.ChannelAccountId IS NOT NULL;
                """);
        }
        var patched = touched.Channels.Where(p => !touched.Rebuild.Contains(p.Ticket)).Select(p => new object[] { p.Ticket, p.Channel }).ToList();
        if (patched.Count > 0)
        {
            var pairs = System.Text.Json.JsonSerializer.Serialize(patched);
            await db.Database.ExecuteSqlAsync($"""
                INSERT OR IGNORE INTO TicketChannels (TicketNumber, ChannelAccountId, UpdatedAt)
                SELECT t.Number, json_extract(p.value, '$[1]'), t.UpdatedAt FROM json_each({pairs}) p JOIN Tickets t ON t.Number = json_extract(p.value, '$[0]');
                """);
        }
        await db.Database.ExecuteSqlAsync($"""
            UPDATE TicketChannels SET UpdatedAt = (SELECT t.UpdatedAt FROM Tickets t WHERE t.Number = TicketChannels.TicketNumber)
            WHERE TicketNumber IN (SELECT value FROM json_each({list})) AND EXISTS (SELECT 1 FROM Tickets t WHERE t.Number = TicketChannels.TicketNumber);
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
