namespace Crm.Service.Grains.Assignment;

/// <summary>Who of a team's agents (by sign-in name) is online now. A queue asks when it activates, because presence
/// arrives only as changes and an activation that missed them (collected while idle, moved) would think everyone is
/// offline.</summary>
public interface IAgentPresenceLookup
{
    Task<IReadOnlySet<string>> OnlineAsync(IReadOnlyCollection<string> agents, CancellationToken cancellationToken = default);
}

/// <summary>A silo without the agents' console: nobody is online until someone says so.</summary>
public sealed class NobodyOnline : IAgentPresenceLookup
{
    public Task<IReadOnlySet<string>> OnlineAsync(IReadOnlyCollection<string> agents, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlySet<string>>(new HashSet<string>());
}
