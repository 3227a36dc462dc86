using Crm.Service.Grains.Storage;

namespace Crm.Service.Infrastructure.Changes;

/// <summary>Reads the durable change feed directly, for a reader that keeps its own position (a live console
/// client that loads state, then follows the feed from <see cref="LastSequenceAsync"/>).</summary>
public interface IChangeFeed
{
    /// <summary>Up to <paramref name="max"/> changes with a sequence above <paramref name="after"/>, in sequence order.</summary>
    Task<IReadOnlyList<Change>> ReadAsync(long after, int max, CancellationToken cancellationToken = default);

    /// <summary>The sequence of the newest committed change, or 0 when none was ever written.</summary>
    Task<long> LastSequenceAsync(CancellationToken cancellationToken = default);
}
