using System.Collections.Concurrent;
using Crm.Service.Contracts;
using Crm.Service.Grains.Assignment;
using Crm.Service.Infrastructure.Teams;

namespace Crm.Service.AgentConsole;

/// <summary>Tells the team queues when an agent comes online or leaves (so waiting tickets go to them at once, or
/// their unstarted tickets go back after the team's offline time). Away counts as not online. Queues know agents by
/// sign-in name (what a ticket's assignee holds), presence by account id.
/// Forwarding is serialised per agent and sends the state as it is when the call goes out, not the event that woke
/// it: a quick disconnect/reconnect whose two forwards race still leaves the queues with the agent's last state.</summary>
public sealed class PresenceToQueues(AgentPresence presence, TeamDirectory teams, IGrainFactory grains, ILogger<PresenceToQueues> logger) : IHostedService
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _perAgent = new(StringComparer.Ordinal);

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

    private void OnChanged(PresenceView view) => _ = ForwardAsync(view.UserId);

    internal async Task ForwardAsync(string userId)
    {
        var gate = _perAgent.GetOrAdd(userId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync();
        try
        {
            var teamIds = await teams.TeamsOfAsync(userId, CancellationToken.None);
            // Read after the (slow) lookup, under the agent's gate: the last forward to run sends the latest state.
            var now = await presence.GetAsync(userId, CancellationToken.None);
            if (now.Name.Length == 0)
                return;
            foreach (var team in teamIds)
                await grains.GetGrain<ITeamQueueGrain>(team).SetOnlineAsync(now.Name, now.Status == PresenceStatus.Online);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Presence of {User} could not be passed to their team queues; a queue asks again when it activates", userId);
        }
        finally
        {
            gate.Release();
        }
    }
}

/// <summary>The queues' view of the hub's presence (by sign-in name), asked when a queue activates.</summary>
public sealed class HubPresenceLookup(AgentPresence presence) : IAgentPresenceLookup
{
    public async Task<IReadOnlySet<string>> OnlineAsync(IReadOnlyCollection<string> agents, CancellationToken cancellationToken = default)
    {
        var wanted = agents.ToHashSet(StringComparer.OrdinalIgnoreCase);
        return (await presence.ListAsync(cancellationToken))
            .Where(p => p.Status == PresenceStatus.Online && wanted.Contains(p.Name))
            .Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
    }
}
