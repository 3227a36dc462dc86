using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Orleans.Runtime;

namespace Crm.Service.Infrastructure.Reminders;

/// <summary>Orleans reminders in the embedded SQLite file, so a reminder set before a stop still fires after a start.
/// Writes are optimistic on the ETag, as the reminder service expects.</summary>
internal sealed class SqliteReminderTable(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer) : IReminderTable
{
    public Task Init() => initializer.EnsureInitializedAsync(CancellationToken.None);

    public async Task<ReminderTableData> ReadRows(GrainId grainId)
    {
        var id = grainId.ToString();
        await using var db = await contexts.CreateDbContextAsync();
        var rows = await db.Reminders.AsNoTracking().Where(r => r.GrainId == id).ToListAsync();
        return new ReminderTableData(rows.Select(ToEntry));
    }

    public async Task<ReminderTableData> ReadRows(uint begin, uint end)
    {
        // The range is (begin, end] on the hash ring; begin >= end means it wraps around zero.
        await using var db = await contexts.CreateDbContextAsync();
        var query = db.Reminders.AsNoTracking();
        query = begin < end
            ? query.Where(r => r.GrainHash > begin && r.GrainHash <= end)
            : query.Where(r => r.GrainHash > begin || r.GrainHash <= end);
        return new ReminderTableData((await query.ToListAsync()).Select(ToEntry));
    }

    public async Task<ReminderEntry?> ReadRow(GrainId grainId, string reminderName)
    {
        var id = grainId.ToString();
        await using var db = await contexts.CreateDbContextAsync();
        var row = await db.Reminders.AsNoTracking().FirstOrDefaultAsync(r => r.GrainId == id && r.Name == reminderName);
        return row is null ? null : ToEntry(row);
    }

    public async Task<string?> UpsertRow(ReminderEntry entry)
    {
        var id = entry.GrainId.ToString();
        var etag = Guid.NewGuid().ToString("N");
        await using var db = await contexts.CreateDbContextAsync();
        var row = await db.Reminders.FirstOrDefaultAsync(r => r.GrainId == id && r.Name == entry.ReminderName);
        if (row is null)
        {
            row = new ReminderRecord { GrainId = id, Name = entry.ReminderName, ETag = etag };
            db.Reminders.Add(row);
        }
        row.GrainHash = entry.GrainId.GetUniformHashCode();
        row.StartAtUtcTicks = DateTime.SpecifyKind(entry.StartAt, DateTimeKind.Utc).Ticks;
        row.PeriodTicks = entry.Period.Ticks;
        row.ETag = etag;
        await db.SaveChangesAsync();
        return etag;
    }

    public async Task<bool> RemoveRow(GrainId grainId, string reminderName, string eTag)
    {
        var id = grainId.ToString();
        await using var db = await contexts.CreateDbContextAsync();
        return await db.Reminders.Where(r => r.GrainId == id && r.Name == reminderName && r.ETag == eTag).ExecuteDeleteAsync() > 0;
    }

    public async Task TestOnlyClearTable()
    {
        await using var db = await contexts.CreateDbContextAsync();
        await db.Reminders.ExecuteDeleteAsync();
    }

    private static ReminderEntry ToEntry(ReminderRecord row) => new()
    {
        GrainId = GrainId.Parse(row.GrainId),
        ReminderName = row.Name,
        StartAt = new DateTime(row.StartAtUtcTicks, DateTimeKind.Utc),
        Period = TimeSpan.FromTicks(row.PeriodTicks),
        ETag = row.ETag,
    };
}
