using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>Due and missed follow-ups as console notifications (the hub message of @mentions), to the people named
/// (by account id, email or user name; API-key actors have no console) and, for escalations, every Supervisor.</summary>
public sealed class HubFollowUpNotifier(IDbContextFactory<CrmDbContext> contexts, IHubContext<AgentHub, IAgentClient> hub,
    Infrastructure.Notifications.NotificationSettingsStore settings) : IFollowUpNotifier
{
    public async Task NotifyAsync(FollowUpNotice notice, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var resolved = await NotificationRecipients.ResolveAsync(db, notice.People, notice.NotifySupervisors, cancellationToken);
        // Those who turned follow-up notifications off on their Profile are left out.
        var people = await settings.WhoWantsAsync(resolved, Infrastructure.Notifications.NotificationCategory.FollowUpDue, cancellationToken);
        if (people.Count > 0)
            await hub.Clients.Users([.. people]).Notify(new AgentNotification(notice.Kind, notice.Ticket ?? 0, "follow-up"));
    }
}
