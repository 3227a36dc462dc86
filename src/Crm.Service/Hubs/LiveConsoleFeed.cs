using System.Globalization;
using Crm.Service.AgentConsole;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Hubs;

/// <summary>
/// Turns the change feed into pushes to the agents' hub: after moving the queue counts, "these tickets changed" to
/// everyone (each browser then asks for its own counts), and "ticket changed" to the browsers watching a ticket (a message on it, its delivery
/// status, or the ticket row). A ticket of a restricted team is announced only to its members and to Supervisors and
/// Admins, not even by number. Idempotent as the feed requires: a repeated change repeats a harmless notification,
/// and the counts re-read the tickets. Every node subscribes, so a change made on one node reaches agents on all.
/// </summary>
internal sealed class LiveConsoleFeed(QueueCounts counts, IHubContext<AgentHub, IAgentClient> hub, IDbContextFactory<CrmDbContext> contexts, TeamDirectory teams, TeamDirectoryAccess access,
    Infrastructure.Notifications.NotificationSettingsStore settings)
    : IChangeConsumer
{
    public string Name => "console-live";

    /// <summary>Each node pushes to its own agents' connections and keeps its own queue counters: each needs every change.</summary>
    public bool EveryNode => true;

    /// <summary>Changes were pruned before this node read them: the counters are taken again from the store, and every
    /// browser reads its counts and its open ticket again (review LE3). The assignment and new-ticket notices of the lost
    /// range, and those of a batch that failed before it, are not sent: what they named may have changed since.</summary>
    public async Task<bool> ResetAsync(CancellationToken cancellationToken)
    {
        await counts.ReloadAsync(cancellationToken);
        _unsent = null;
        await hub.Clients.Group(AgentHub.QueuesGroup).Resync();
        return true;
    }

    // The notices of a batch not yet sent: the counts have already moved, so the batch handed again after a failed push
    // finds nothing new and would notify nobody (review LD7). Each notice leaves these as soon as it was sent (or found
    // not to be sent), so a retry repeats none (review LE2). The dispatcher hands one batch at a time.
    private (long Last, HashSet<(long Number, string Assignee)> Assigned, HashSet<(long Number, string Team)> NewInTeam)? _unsent;

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        var applied = await counts.ApplyAsync(changes, cancellationToken);
        HashSet<(long, string)> assigned = [], arrived = [];
        if (_unsent is { } unsent && changes[0].Sequence <= unsent.Last)
            (assigned, arrived) = (unsent.Assigned, unsent.NewInTeam);
        assigned.UnionWith(applied.Assigned);
        arrived.UnionWith(applied.NewInTeam);
        _unsent = (changes[^1].Sequence, assigned, arrived);
        await PushAsync(changes, assigned, arrived, cancellationToken);
        _unsent = null;
    }

    private async Task PushAsync(IReadOnlyList<Change> changes, HashSet<(long Number, string Assignee)> assigned, HashSet<(long Number, string Team)> newInTeam,
        CancellationToken cancellationToken)
    {
        var tickets = changes.Where(c => c.Entity == ChangeEntities.Ticket)
            .Select(c => long.Parse(c.EntityId, CultureInfo.InvariantCulture)).ToHashSet();
        var messageIds = changes.Where(c => c.Entity == ChangeEntities.Message && Guid.TryParse(c.EntityId, out _))
            .Select(c => Guid.Parse(c.EntityId)).Distinct().ToList();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (messageIds.Count > 0)
            tickets.UnionWith(await db.Messages.AsNoTracking().Where(m => messageIds.Contains(m.Id)).Select(m => m.TicketNumber).ToListAsync(cancellationToken));
        if (tickets.Count == 0)
            return;
        if (assigned.Count > 0)
            await NotifyAssigneesAsync(db, assigned, cancellationToken);
        if (newInTeam.Count > 0)
            await NotifyTeamsOfNewTicketsAsync(db, newInTeam, cancellationToken);
        var numbers = tickets.ToList();
        var teamOf = await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number) && t.Team != null)
            .ToDictionaryAsync(t => t.Number, t => t.Team!, cancellationToken);
        var restricted = await teams.RestrictedMembersAsync([.. teamOf.Values.Distinct()], cancellationToken);
        var open = new List<long>();
        foreach (var number in tickets.Order())
        {
            if (teamOf.TryGetValue(number, out var team) && restricted.TryGetValue(team, out var members))
            {
                // Members by account id and the every-team group; the ticket group may hold people who watched it before it moved.
                await hub.Clients.Group(AgentHub.EveryTeamGroup).QueuesChanged([number]);
                await hub.Clients.Group(AgentHub.EveryTeamGroup).TicketChanged(number);
                if (members.Count > 0)
                {
                    await hub.Clients.Users(members).QueuesChanged([number]);
                    await hub.Clients.Users(members).TicketChanged(number);
                }
            }
            else
            {
                open.Add(number);
            }
        }
        if (open.Count == 0)
            return;
        await hub.Clients.Group(AgentHub.QueuesGroup).QueuesChanged(open);
        foreach (var number in open)
            await hub.Clients.Group(AgentHub.TicketGroup(number)).TicketChanged(number);
    }

    /// <summary>"Assigned to you" to the assignee's own connections (on this node: every node runs this consumer).
    /// The assignee is a sign-in name; names of no console account (API-set, say) notify nobody. Each notice leaves
    /// <paramref name="pending"/> once sent or dropped; one whose ticket has another assignee by now is dropped (a
    /// retried batch must not tell the previous one "assigned to you").</summary>
    private async Task NotifyAssigneesAsync(CrmDbContext db, HashSet<(long Number, string Assignee)> pending, CancellationToken cancellationToken)
    {
        var names = pending.Select(a => a.Assignee.ToUpperInvariant()).Distinct().ToList();
        var ids = await db.Users.AsNoTracking().Where(u => names.Contains(u.NormalizedUserName!))
            .ToDictionaryAsync(u => u.NormalizedUserName!, u => u.Id, cancellationToken);
        var numbers = pending.Select(a => a.Number).Distinct().ToList();
        var now = await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number))
            .ToDictionaryAsync(t => t.Number, t => new { t.Team, t.Assignee }, cancellationToken);
        foreach (var notice in pending.ToList())
        {
            var (number, assignee) = notice;
            // Not even the number to someone who may not see the ticket (a restricted team they are not in).
            if (now.TryGetValue(number, out var ticket) && string.Equals(ticket.Assignee, assignee, StringComparison.OrdinalIgnoreCase)
                && ids.TryGetValue(assignee.ToUpperInvariant(), out var userId) && await access.MaySeeTeamAsync(userId, ticket.Team, cancellationToken)
                && (await settings.WhoWantsAsync([userId], Infrastructure.Notifications.NotificationCategory.Assignment, cancellationToken)).Count > 0)
                await hub.Clients.User(userId).Notify(new AgentNotification("assigned", number, null));
            pending.Remove(notice);
        }
    }

    /// <summary>"New ticket" to the members of the team a new ticket came into (created in it, or routed there a moment
    /// later: review CT2) who asked for it on their Profile (off by default). Team members of a restricted team may
    /// see its tickets by definition. Each notice leaves <paramref name="pending"/> once sent; one whose ticket has
    /// left the team by now is dropped.</summary>
    private async Task NotifyTeamsOfNewTicketsAsync(CrmDbContext db, HashSet<(long Number, string Team)> pending, CancellationToken cancellationToken)
    {
        var numbers = pending.Select(a => a.Number).Distinct().ToList();
        var teamNow = await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number)).ToDictionaryAsync(t => t.Number, t => t.Team, cancellationToken);
        foreach (var notice in pending.ToList())
        {
            var (number, team) = notice;
            if (teamNow.TryGetValue(number, out var current) && current == team)
            {
                var members = await db.TeamMembers.AsNoTracking().Where(m => m.TeamId == team).Select(m => m.UserId).ToListAsync(cancellationToken);
                var wanting = await settings.WhoWantsAsync(members, Infrastructure.Notifications.NotificationCategory.NewTicketInMyTeams, cancellationToken);
                if (wanting.Count > 0)
                    await hub.Clients.Users([.. wanting]).Notify(new AgentNotification("new-ticket", number, team));
            }
            pending.Remove(notice);
        }
    }
}
