using Crm.Service.Auth;
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
        var people = new HashSet<string>(StringComparer.Ordinal);
        if (notice.NotifyAssignee && !string.IsNullOrEmpty(notice.Assignee))
        {
            var upper = notice.Assignee.ToUpperInvariant();
            people.UnionWith(await db.Users.AsNoTracking()
                .Where(u => u.Id == notice.Assignee || u.NormalizedEmail == upper || u.NormalizedUserName == upper)
                .Select(u => u.Id).Take(2).ToListAsync(cancellationToken));
        }
        if (notice.NotifySupervisors)
            people.UnionWith(await db.UserRoles.AsNoTracking()
                .Join(db.Roles.Where(r => r.Name == ConsoleRoles.Supervisor), ur => ur.RoleId, r => r.Id, (ur, _) => ur.UserId)
                .ToListAsync(cancellationToken));
        if (people.Count == 0)
            return;
        var kind = $"sla-{notice.Milestone}-{notice.Metric}".ToLowerInvariant();
        await hub.Clients.Users([.. people]).Notify(new AgentNotification(kind, notice.Ticket, "sla"));
    }
}
