using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;

namespace Crm.Service.Hubs;

/// <summary>A personal notification (the ticket was assigned to you, someone mentioned you, an SLA or follow-up notice); <see cref="Customer"/> is set for a follow-up on a customer without a ticket (Ticket 0).</summary>
public sealed record AgentNotification(string Kind, long Ticket, string? By, Guid? Customer = null);

/// <summary>What the server pushes to agents' browsers. Events carry no ticket content: the page fetches what changed
/// through its own authorized handlers, so a push can never show more than a page would.</summary>
public interface IAgentClient
{
    /// <summary>These tickets changed, so queue sizes may have: the client asks <see cref="AgentHub.GetCounts"/> for its own view
    /// (its "Mine" is personal).</summary>
    Task QueuesChanged(IReadOnlyList<long> tickets);

    /// <summary>The watched ticket changed: a new message, a delivery status, a field.</summary>
    Task TicketChanged(long number);

    /// <summary>Changes were pruned before this node pushed them (LiveConsoleFeed's reset): the counts and the open
    /// ticket's timeline are read again, whatever they show.</summary>
    Task Resync();

    /// <summary>Who else is on the watched ticket, and who of them is typing (the collision indicator).</summary>
    Task Viewers(long number, IReadOnlyList<TicketViewers.ViewerView> viewers);

    /// <summary>A colleague's presence changed.</summary>
    Task PresenceChanged(PresenceView presence);

    Task Notify(AgentNotification notification);

    /// <summary>A notice was stored for you: your unread count now (capped at <c>NoticeStore.MaxUnreadCount</c> + 1), for the bell.</summary>
    Task NoticesChanged(int unread);
}

/// <summary>The agents' hub. Every connection joins the queue group, Supervisors and Admins also the group that hears
/// restricted teams' tickets; the ticket page also watches its ticket (only one it may see). Events of a restricted
/// team's ticket go only to its members (by account id, read per event, so a removed member stops hearing at once)
/// and to that group (<see cref="LiveConsoleFeed"/>). A client that reconnects watches again and reloads what it shows
/// (wwwroot/js/console.js). Connections also make presence (connected = not offline) and the ticket viewers.</summary>
[Authorize(Policy = ConsolePolicies.Tickets)]
public sealed class AgentHub(TicketAccess access, AgentPresence presence, TicketViewers viewers, AgentConnections connections, AgentActivityRelay activity,
    Microsoft.AspNetCore.Identity.SignInManager<Microsoft.AspNetCore.Identity.IdentityUser> signIn) : Hub<IAgentClient>
{
    internal const string QueuesGroup = "queues";
    internal const string EveryTeamGroup = "every-team";

    internal static string TicketGroup(long number) => "ticket:" + number;

    private string Me => Context.User!.Identity!.Name!;

    public override async Task OnConnectedAsync()
    {
        // The cookie is re-checked against the account only every Console:SessionRecheckInterval; a connection is
        // long-lived, so it checks now: a disabled person or one whose roles changed cannot reconnect on an old cookie.
        if (await signIn.ValidateSecurityStampAsync(Context.User) is null)
        {
            Context.Abort();
            return;
        }
        await Groups.AddToGroupAsync(Context.ConnectionId, QueuesGroup);
        if (TicketAccess.SeesEveryTeam(Context.User!))
            await Groups.AddToGroupAsync(Context.ConnectionId, EveryTeamGroup);
        presence.Connected(TicketAccess.UserId(Context.User!), Me, Context.ConnectionId);
        connections.Add(TicketAccess.UserId(Context.User!), Context);
        await base.OnConnectedAsync();
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        presence.Disconnected(TicketAccess.UserId(Context.User!), Context.ConnectionId);
        connections.Remove(TicketAccess.UserId(Context.User!), Context.ConnectionId);
        if (viewers.Leave(Context.ConnectionId) is { } left)
            await Clients.Group(TicketGroup(left)).Viewers(left, viewers.Of(left));
        await base.OnDisconnectedAsync(exception);
    }

    public Task<QueueCountsView> GetCounts() => access.CountsAsync(Context.User!, Context.ConnectionAborted);

    public Task<IReadOnlyList<PresenceView>> GetPresence() => presence.ListAsync(Context.ConnectionAborted);

    public async Task WatchTicket(long number)
    {
        if (!await access.CanSeeTicketAsync(Context.User!, number, Context.ConnectionAborted))
            throw new HubException($"No ticket #{number}.");
        await Groups.AddToGroupAsync(Context.ConnectionId, TicketGroup(number));
        if (viewers.Watch(Context.ConnectionId, number, Me) is { } before)
        {
            await Groups.RemoveFromGroupAsync(Context.ConnectionId, TicketGroup(before));
            await Clients.Group(TicketGroup(before)).Viewers(before, viewers.Of(before));
        }
        await Clients.Group(TicketGroup(number)).Viewers(number, viewers.Of(number));
        // The agent opened the ticket: a live customer (web chat) sees their messages as read. Queued, not awaited
        // (review KW12): a slow session grain must not stall this agent's hub calls.
        activity.Read(number);
    }

    public async Task UnwatchTicket(long number)
    {
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, TicketGroup(number));
        if (viewers.Leave(Context.ConnectionId) is { } left)
            await Clients.Group(TicketGroup(left)).Viewers(left, viewers.Of(left));
    }

    /// <summary>The agent is typing in a composer of the ticket they watch (the page sends this at most every few seconds
    /// per composer): <paramref name="composer"/> is <c>reply</c> (the public reply box) or <c>note</c> (an internal note).</summary>
    public async Task Typing(long number, string? composer = null)
    {
        // Only on the ticket this connection watches (seen through the access check of WatchTicket).
        if (viewers.Typing(Context.ConnectionId, number))
        {
            await Clients.OthersInGroup(TicketGroup(number)).Viewers(number, viewers.Of(number));
            // A live customer (web chat) sees "An agent is typing…" (issue 17/18), but only for the public reply: an
            // internal note is never hinted at to the customer (review KW11). Queued, not awaited (review KW12).
            if (composer == ReplyComposer)
                activity.Typing(number);
        }
    }

    internal const string ReplyComposer = "reply";
}

/// <summary>Tells every connected agent when a colleague's presence changes.</summary>
internal sealed class PresenceBroadcaster(AgentPresence presence, IHubContext<AgentHub, IAgentClient> hub, ILogger<PresenceBroadcaster> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        presence.Changed += OnChanged;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        presence.Changed -= OnChanged;
        return Task.CompletedTask;
    }

    private void OnChanged(PresenceView view) => _ = SendAsync(view);

    private async Task SendAsync(PresenceView view)
    {
        try
        {
            await hub.Clients.Group(AgentHub.QueuesGroup).PresenceChanged(view);
        }
        catch (Exception ex)
        {
            logger.LogDebug(ex, "Could not announce the presence of {Name}", view.Name);
        }
    }
}
