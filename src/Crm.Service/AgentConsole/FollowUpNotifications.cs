using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>Due and missed follow-ups as console notifications (the hub message of @mentions), to the people named
/// (by account id, email or user name) and, for escalations, every Supervisor. When none of the people named has a
/// console (the owner is an API key), the notice goes to who can act: the ticket's assignee, else the team, else the
/// admins (see <see cref="NotificationRecipients.WhoCanActAsync"/>). Those who turned follow-up notices off are left out.</summary>
public sealed class HubFollowUpNotifier(IDbContextFactory<CrmDbContext> contexts, IHubContext<AgentHub, IAgentClient> hub,
    Infrastructure.Notifications.NotificationSettingsStore settings) : IFollowUpNotifier
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
        var people = await settings.WhoWantsAsync(named, Infrastructure.Notifications.NotificationCategory.FollowUpDue, cancellationToken);
        if (people.Count > 0)
            await hub.Clients.Users([.. people]).Notify(new AgentNotification(notice.Kind, notice.Ticket ?? 0, "follow-up", notice.CustomerId));
    }
}
