using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;

namespace Crm.Service.Hubs;

/// <summary>What the server pushes to agents' browsers. Events carry no ticket content: the page fetches what changed
/// through its own authorized handlers, so a push can never show more than a page would.</summary>
public interface IAgentClient
{
    /// <summary>These tickets changed, so queue sizes may have: the client asks <see cref="AgentHub.GetCounts"/> for its own view
    /// (its "Mine" is personal).</summary>
    Task QueuesChanged(IReadOnlyList<long> tickets);

    /// <summary>The watched ticket changed: a new message, a delivery status, a field.</summary>
    Task TicketChanged(long number);
}

/// <summary>The agents' hub. Every connection joins the queue group; the ticket page also watches its ticket. A client
/// that reconnects watches again and reloads what it shows (wwwroot/js/console.js).</summary>
[Authorize(Policy = ConsolePolicies.Tickets)]
public sealed class AgentHub(QueueCounts counts) : Hub<IAgentClient>
{
    internal const string QueuesGroup = "queues";

    internal static string TicketGroup(long number) => "ticket:" + number;

    public override async Task OnConnectedAsync()
    {
        await Groups.AddToGroupAsync(Context.ConnectionId, QueuesGroup);
        await base.OnConnectedAsync();
    }

    public Task<QueueCountsView> GetCounts() => counts.GetAsync(Context.User!.Identity!.Name!, Context.ConnectionAborted);

    public Task WatchTicket(long number) => Groups.AddToGroupAsync(Context.ConnectionId, TicketGroup(number));

    public Task UnwatchTicket(long number) => Groups.RemoveFromGroupAsync(Context.ConnectionId, TicketGroup(number));
}
