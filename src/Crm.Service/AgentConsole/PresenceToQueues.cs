using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Teams;

namespace Crm.Service.AgentConsole;

/// <summary>Tells the team queues when an agent comes online or leaves (so waiting tickets go to them at once, or
/// their unstarted tickets go back after the team's offline time). Away counts as not online.</summary>
public sealed class PresenceToQueues(AgentPresence presence, TeamDirectory teams, IGrainFactory grains, ILogger<PresenceToQueues> logger) : IHostedService
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

    private void OnChanged(PresenceView view) => _ = ForwardAsync(view);

    private async Task ForwardAsync(PresenceView view)
    {
        try
        {
            foreach (var team in await teams.TeamsOfAsync(view.UserId, CancellationToken.None))
                await grains.GetGrain<ITeamQueueGrain>(team).SetOnlineAsync(view.UserId, view.Status == PresenceStatus.Online);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Presence of {User} could not be passed to their team queues; the next change passes it", view.UserId);
        }
    }
}
