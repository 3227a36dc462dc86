using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Notifications;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>Due and missed follow-ups as console notices, to the people named (by account id, email or user name) and,
/// for escalations, every Supervisor. When none of the people named has a console (the owner is an API key), the notice
/// goes to who can act: the ticket's assignee, else the team, else the admins (see
/// <see cref="NotificationRecipients.WhoCanActAsync"/>). Those who turned follow-up notices off are left out. Each notice
/// is stored per person (<see cref="NoticeStore"/>, once per cause) before it is pushed to the consoles online now.</summary>
public sealed class HubFollowUpNotifier(IDbContextFactory<CrmDbContext> contexts, IHubContext<AgentHub, IAgentClient> hub,
    NotificationSettingsStore settings, NoticeStore notices, ILogger<HubFollowUpNotifier> logger) : IFollowUpNotifier
{
    public async Task NotifyAsync(FollowUpNotice notice, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var named = await NotificationRecipients.PeopleAsync(db, notice.People, cancellationToken);
        if (named.Count == 0)
            named = await NotificationRecipients.WhoCanActAsync(db, notice.Ticket, notice.Team, cancellationToken);
        if (notice.NotifySupervisors)
            named.UnionWith(await NotificationRecipients.ResolveAsync(db, [], supervisors: true, cancellationToken));
        // Those who turned follow-up notifications off on their Profile are left out.
        var people = await settings.WhoWantsAsync(named, NotificationCategory.FollowUpDue, cancellationToken);
        // A caller without a cause (none in this codebase) gets a notice per call.
        var cause = notice.Cause ?? $"{notice.Kind}:{Guid.NewGuid():N}";
        var fresh = await notices.StoreAsync(people, cause, notice.Kind, notice.Ticket, notice.CustomerId, "follow-up", cancellationToken);
        await LivePush.SendAsync(hub, notices, fresh, new AgentNotification(notice.Kind, notice.Ticket ?? 0, "follow-up", notice.CustomerId), logger);
    }
}

internal static class LivePush
{
    /// <summary>The live push of a stored notice: best effort, since the Notices page shows it anyway.</summary>
    public static async Task SendAsync(IHubContext<AgentHub, IAgentClient> hub, NoticeStore notices, IReadOnlyList<string> people, AgentNotification notification, ILogger logger)
    {
        if (people.Count == 0)
            return;
        try
        {
            await hub.Clients.Users([.. people]).Notify(notification);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "The live {Kind} notice could not be pushed (it is stored)", notification.Kind);
        }
        // The bell: each person's own unread count, read after the commit, so it includes this notice. One person's
        // failed count or push never skips the others (an escalation goes to every supervisor).
        foreach (var person in people)
            await BellAsync(hub, notices, person, logger);
    }

    /// <summary>Pushes the person's unread count to all their open consoles (after a notice is stored or marked read,
    /// so every tab's bell counts down as well as up). Best effort: the next page load shows the stored count.</summary>
    public static async Task BellAsync(IHubContext<AgentHub, IAgentClient> hub, NoticeStore notices, string person, ILogger logger)
    {
        try
        {
            await hub.Clients.User(person).NoticesChanged(await notices.UnreadCountAsync(person));
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "The unread notice count could not be pushed to {Person}", person);
        }
    }
}
