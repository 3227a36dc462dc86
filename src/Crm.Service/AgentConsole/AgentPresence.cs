using Crm.Service.Infrastructure.Teams;

namespace Crm.Service.AgentConsole;

public enum PresenceStatus
{
    Online,
    Away,
    Offline,
}

/// <summary>A person's presence as others see it: the status they chose, but Offline while no console page of theirs is connected.</summary>
public sealed record PresenceView(string UserId, string Name, PresenceStatus Status);

/// <summary>Who of the agents is reachable. Other parts (web chat's "is anyone online?", routing) ask here.</summary>
public interface IAgentPresence
{
    Task<PresenceView> GetAsync(string userId, CancellationToken cancellationToken);

    /// <summary>Everyone with a status (connected or chosen), by name.</summary>
    Task<IReadOnlyList<PresenceView>> ListAsync(CancellationToken cancellationToken);

    /// <summary>The status the person chose in their profile (kept while they are away from the console).</summary>
    Task SetStatusAsync(string userId, string name, PresenceStatus status, CancellationToken cancellationToken);

    /// <summary>True when someone is Online: any agent when <paramref name="teamId"/> is null, else a member of that team.</summary>
    Task<bool> AnyOnlineAsync(string? teamId, CancellationToken cancellationToken);
}

/// <summary>
/// Presence kept in this node's memory from the agents' hub connections (a person is connected while any of their
/// console pages is) and the status they chose. Per node: in cluster mode each node knows the agents connected to it
/// (the cluster issue moves this into a grain behind the same interface).
/// </summary>
public sealed class AgentPresence(TeamDirectory teams) : IAgentPresence
{
    private sealed class Person(string name)
    {
        public string Name = name;
        public PresenceStatus Chosen = PresenceStatus.Online;
        public readonly HashSet<string> Connections = new(StringComparer.Ordinal);
    }

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Person> _people = new(StringComparer.Ordinal);

    /// <summary>Raised with the person's new view when their effective status changes (the hub tells everyone).</summary>
    public event Action<PresenceView>? Changed;

    public Task<PresenceView> GetAsync(string userId, CancellationToken cancellationToken)
    {
        lock (_lock)
            return Task.FromResult(_people.TryGetValue(userId, out var person) ? View(userId, person) : new PresenceView(userId, "", PresenceStatus.Offline));
    }

    /// <summary>The status the person chose, whether or not they are connected (their profile shows it).</summary>
    public PresenceStatus ChosenStatus(string userId)
    {
        lock (_lock)
            return _people.TryGetValue(userId, out var person) ? person.Chosen : PresenceStatus.Online;
    }

    public Task<IReadOnlyList<PresenceView>> ListAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
            return Task.FromResult<IReadOnlyList<PresenceView>>([.. _people.Select(p => View(p.Key, p.Value)).OrderBy(p => p.Name, StringComparer.OrdinalIgnoreCase)]);
    }

    public Task SetStatusAsync(string userId, string name, PresenceStatus status, CancellationToken cancellationToken)
    {
        Update(userId, name, person => person.Chosen = status);
        return Task.CompletedTask;
    }

    public async Task<bool> AnyOnlineAsync(string? teamId, CancellationToken cancellationToken)
    {
        HashSet<string> online;
        lock (_lock)
            online = _people.Where(p => View(p.Key, p.Value).Status == PresenceStatus.Online).Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
        if (online.Count == 0)
            return false;
        if (teamId is null)
            return true;
        return (await teams.GetAsync(teamId, cancellationToken))?.MemberIds.Any(online.Contains) == true;
    }

    public void Connected(string userId, string name, string connectionId) => Update(userId, name, person => person.Connections.Add(connectionId));

    public void Disconnected(string userId, string connectionId) => Update(userId, null, person => person.Connections.Remove(connectionId));

    private void Update(string userId, string? name, Action<Person> change)
    {
        PresenceView before, after;
        lock (_lock)
        {
            if (!_people.TryGetValue(userId, out var person))
                _people[userId] = person = new Person(name ?? "");
            if (name is not null)
                person.Name = name;
            before = View(userId, person);
            change(person);
            after = View(userId, person);
        }
        if (before.Status != after.Status)
            Changed?.Invoke(after);
    }

    private static PresenceView View(string userId, Person person) =>
        new(userId, person.Name, person.Connections.Count == 0 ? PresenceStatus.Offline : person.Chosen);
}

/// <summary>Who is looking at or typing on which ticket (the collision indicator), per hub connection. Typing lasts
/// <see cref="TypingFor"/> after the last keystroke signal.</summary>
public sealed class TicketViewers(TimeProvider time)
{
    public static readonly TimeSpan TypingFor = TimeSpan.FromSeconds(6);

    private sealed record Viewer(long Ticket, string Name, DateTimeOffset? TypingAt);

    public sealed record ViewerView(string Name, bool Typing);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Viewer> _byConnection = new(StringComparer.Ordinal);

    /// <summary>Returns the ticket the connection looked at before (its viewers changed too), if another.</summary>
    public long? Watch(string connectionId, long ticket, string name)
    {
        lock (_lock)
        {
            var before = _byConnection.GetValueOrDefault(connectionId)?.Ticket;
            _byConnection[connectionId] = new Viewer(ticket, name, null);
            return before is { } b && b != ticket ? b : null;
        }
    }

    public bool Typing(string connectionId, long ticket)
    {
        lock (_lock)
        {
            if (!_byConnection.TryGetValue(connectionId, out var viewer) || viewer.Ticket != ticket)
                return false;
            _byConnection[connectionId] = viewer with { TypingAt = time.GetUtcNow() };
            return true;
        }
    }

    /// <summary>Forgets the connection; returns the ticket it was looking at.</summary>
    public long? Leave(string connectionId)
    {
        lock (_lock)
            return _byConnection.Remove(connectionId, out var viewer) ? viewer.Ticket : null;
    }

    /// <summary>Everyone on the ticket, one entry per person (typing if any of their pages is).</summary>
    public IReadOnlyList<ViewerView> Of(long ticket)
    {
        var now = time.GetUtcNow();
        lock (_lock)
            return [.. _byConnection.Values.Where(v => v.Ticket == ticket)
                .GroupBy(v => v.Name, StringComparer.Ordinal)
                .Select(g => new ViewerView(g.Key, g.Any(v => v.TypingAt is { } at && now - at < TypingFor)))
                .OrderBy(v => v.Name, StringComparer.OrdinalIgnoreCase)];
    }
}

/// <summary>The hub connections of each person on this node, so that disabling someone or changing their roles
/// closes their open connections at once (the hub authorizes only when a connection starts).</summary>
public sealed class AgentConnections
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Dictionary<string, Microsoft.AspNetCore.SignalR.HubCallerContext>> _byUser = new(StringComparer.Ordinal);

    public void Add(string userId, Microsoft.AspNetCore.SignalR.HubCallerContext context)
    {
        lock (_lock)
        {
            if (!_byUser.TryGetValue(userId, out var contexts))
                _byUser[userId] = contexts = new(StringComparer.Ordinal);
            contexts[context.ConnectionId] = context;
        }
    }

    public void Remove(string userId, string connectionId)
    {
        lock (_lock)
            if (_byUser.TryGetValue(userId, out var contexts) && contexts.Remove(connectionId) && contexts.Count == 0)
                _byUser.Remove(userId);
    }

    /// <summary>Closes every connection of the person; returns how many.</summary>
    public int AbortAll(string userId)
    {
        List<Microsoft.AspNetCore.SignalR.HubCallerContext> contexts;
        lock (_lock)
            contexts = _byUser.TryGetValue(userId, out var found) ? [.. found.Values] : [];
        foreach (var context in contexts)
            context.Abort();
        return contexts.Count;
    }
}

/// <summary>The web chat's "is an agent of this widget's team online?" (offline notice), answered by presence.</summary>
public sealed class PresenceAvailability(IAgentPresence presence) : Crm.Connectors.Abstractions.IAgentAvailability
{
    public Task<bool> AnyAgentOnlineAsync(string? teamId, CancellationToken cancellationToken = default) =>
        presence.AnyOnlineAsync(string.IsNullOrEmpty(teamId) ? null : teamId, cancellationToken);
}
