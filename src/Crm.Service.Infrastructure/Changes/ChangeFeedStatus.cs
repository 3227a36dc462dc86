using System.Collections.Concurrent;

namespace Crm.Service.Infrastructure.Changes;

/// <summary>How one change consumer is doing, as its node's dispatcher last saw it.</summary>
public sealed record ChangeConsumerState(
    string Name,
    long? Cursor,
    DateTimeOffset? LastHandledAt,
    int Failures,
    DateTimeOffset? FailingSince,
    string? LastError);

/// <summary>
/// The dispatcher's view of its consumers, for the readiness check and the admin API. A consumer that keeps failing
/// holds back pruning (its changes are kept until it handles them) and whatever it feeds (an index, live updates)
/// falls behind: both must be visible rather than found when the disk fills.
/// </summary>
public sealed class ChangeFeedStatus
{
    private readonly ConcurrentDictionary<string, ChangeConsumerState> _consumers = new(StringComparer.Ordinal);

    public IReadOnlyList<ChangeConsumerState> Consumers => [.. _consumers.Values.OrderBy(c => c.Name, StringComparer.Ordinal)];

    /// <summary>Consumers that prevented the last prune from deleting changes older than the retention.</summary>
    public IReadOnlyList<string> PruneHeldBackBy { get; private set; } = [];

    internal void Registered(string name) => _consumers.TryAdd(name, new ChangeConsumerState(name, null, null, 0, null, null));

    internal void Handled(string name, long cursor, DateTimeOffset at) =>
        _consumers[name] = new ChangeConsumerState(name, cursor, at, 0, null, null);

    internal void CursorRead(string name, long cursor) =>
        _consumers.AddOrUpdate(name, _ => new ChangeConsumerState(name, cursor, null, 0, null, null), (_, state) => state with { Cursor = cursor });

    internal void Failed(string name, Exception error, DateTimeOffset at) =>
        _consumers.AddOrUpdate(name,
            _ => new ChangeConsumerState(name, null, null, 1, at, Describe(error)),
            (_, state) => state with { Failures = state.Failures + 1, FailingSince = state.FailingSince ?? at, LastError = Describe(error) });

    internal void Recovered(string name) =>
        _consumers.AddOrUpdate(name, _ => new ChangeConsumerState(name, null, null, 0, null, null),
            (_, state) => state with { Failures = 0, FailingSince = null, LastError = null });

    internal void Pruned(IReadOnlyList<string> heldBackBy) => PruneHeldBackBy = heldBackBy;

    private static string Describe(Exception error) => $"{error.GetType().Name}: {error.Message}";
}
