using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Notifications;

/// <summary>Which console notifications a person gets (Profile page). No row means the defaults: assignment, mention
/// and follow-up on; new tickets in my teams off (a busy team would drown everyone in it).</summary>
public sealed class NotificationSettingsRecord
{
    public required string UserId { get; set; }
    public bool Assignment { get; set; } = true;
    public bool Mention { get; set; } = true;
    public bool FollowUpDue { get; set; } = true;
    public bool NewTicketInMyTeams { get; set; }
}

/// <summary>The notification kinds a person can turn off.</summary>
public enum NotificationCategory
{
    Assignment,
    Mention,
    FollowUpDue,
    NewTicketInMyTeams,
}

public sealed class NotificationSettingsStore(IDbContextFactory<CrmDbContext> contexts)
{
    public async Task<NotificationSettingsRecord> GetAsync(string userId, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.NotificationSettings.AsNoTracking().FirstOrDefaultAsync(s => s.UserId == userId, cancellationToken)
            ?? new NotificationSettingsRecord { UserId = userId };
    }

    public async Task SaveAsync(NotificationSettingsRecord settings, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (await db.NotificationSettings.FirstOrDefaultAsync(s => s.UserId == settings.UserId, cancellationToken) is { } row)
        {
            row.Assignment = settings.Assignment;
            row.Mention = settings.Mention;
            row.FollowUpDue = settings.FollowUpDue;
            row.NewTicketInMyTeams = settings.NewTicketInMyTeams;
        }
        else
        {
            db.NotificationSettings.Add(settings);
        }
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>The people among <paramref name="userIds"/> who want notifications of <paramref name="category"/>.</summary>
    public async Task<IReadOnlyList<string>> WhoWantsAsync(IEnumerable<string> userIds, NotificationCategory category, CancellationToken cancellationToken)
    {
        var ids = userIds.Distinct(StringComparer.Ordinal).ToList();
        if (ids.Count == 0)
            return [];
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = await db.NotificationSettings.AsNoTracking().Where(s => ids.Contains(s.UserId)).ToDictionaryAsync(s => s.UserId, cancellationToken);
        return [.. ids.Where(id => Wants(rows.GetValueOrDefault(id) ?? new NotificationSettingsRecord { UserId = id }, category))];
    }

    private static bool Wants(NotificationSettingsRecord s, NotificationCategory category) => category switch
    {
        NotificationCategory.Assignment => s.Assignment,
        NotificationCategory.Mention => s.Mention,
        NotificationCategory.FollowUpDue => s.FollowUpDue,
        NotificationCategory.NewTicketInMyTeams => s.NewTicketInMyTeams,
        _ => true,
    };
}
