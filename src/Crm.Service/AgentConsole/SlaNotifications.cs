using Crm.Service.Grains.Sla;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>SLA warnings and breaches as console notifications (the same hub message as @mentions): kind
/// "sla-{milestone}-{metric}" to the assignee (by account id, email or user name) and, for escalations, to every Supervisor.</summary>
public sealed class HubSlaNotifier(IDbContextFactory<CrmDbContext> contexts, IHubContext<AgentHub, IAgentClient> hub) : ISlaNotifier
{
    public async Task NotifyAsync(SlaNotice notice, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var people = await NotificationRecipients.ResolveAsync(db, notice.NotifyAssignee ? [notice.Assignee] : [], notice.NotifySupervisors, cancellationToken);
        if (people.Count == 0)
            return;
        var kind = $"sla-{notice.Milestone}-{notice.Metric}".ToLowerInvariant();
        await hub.Clients.Users([.. people]).Notify(new AgentNotification(kind, notice.Ticket, "sla"));
    }
}
