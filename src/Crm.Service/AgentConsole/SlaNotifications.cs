using Crm.Service.Grains.Sla;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Notifications;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>SLA warnings and breaches as console notices: kind "sla-{milestone}-{metric}" to the assignee (by account id,
/// email or user name) and, for escalations, to every Supervisor. Stored per person (<see cref="NoticeStore"/>, once per
/// milestone) before the live push (the same hub message as @mentions).</summary>
public sealed class HubSlaNotifier(IDbContextFactory<CrmDbContext> contexts, IHubContext<AgentHub, IAgentClient> hub, NoticeStore notices,
    ILogger<HubSlaNotifier> logger) : ISlaNotifier
{
    public async Task NotifyAsync(SlaNotice notice, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var people = await NotificationRecipients.ResolveAsync(db, notice.NotifyAssignee ? [notice.Assignee] : [], notice.NotifySupervisors, cancellationToken);
        if (people.Count == 0)
            return;
        var kind = $"sla-{notice.Milestone}-{notice.Metric}".ToLowerInvariant();
        var fresh = await notices.StoreAsync(people, notice.Cause ?? $"{kind}:{Guid.NewGuid():N}", kind, notice.Ticket, null, "sla", cancellationToken);
        await LivePush.SendAsync(hub, notices, fresh, new AgentNotification(kind, notice.Ticket, "sla"), logger);
    }
}
