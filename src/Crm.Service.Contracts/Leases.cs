namespace Crm.Service.Contracts;

/// <summary>
/// A time-bounded claim on one piece of connector work in the cluster, keyed by what is claimed (a channel account id):
/// whoever holds it runs the work (a bot's getUpdates reader, a mailbox's IMAP reader), everyone else waits. The store
/// decides every grant in one conditional write, so two activations of the grain (two clusters on one store, or a
/// duplicate activation) still grant it to one holder at a time. A holder that dies stops renewing and the lease expires.
/// </summary>
/// <remarks>Holders count their own deadline from when they asked (see <see cref="ConnectorLeaseGrant.Duration"/>), never
/// from <see cref="ConnectorLeaseGrant.ExpiresAt"/>, so their clock need not agree with the grain's.</remarks>
public interface IConnectorLeaseGrain : IGrainWithStringKey
{
    /// <summary>Takes the lease for <paramref name="holder"/> when it is free or expired, or extends it when the holder
    /// already has it; otherwise answers who holds it (<see cref="ConnectorLeaseGrant.Granted"/> false).</summary>
    Task<ConnectorLeaseGrant> AcquireAsync(string holder, TimeSpan duration, CancellationToken cancellationToken = default);

    /// <summary>Extends the lease of a holder that still has it (also just after its expiry, while nobody took it);
    /// never takes it from another holder. Not granted: the holder lost it and must stop at once.</summary>
    Task<ConnectorLeaseGrant> RenewAsync(string holder, TimeSpan duration, CancellationToken cancellationToken = default);

    /// <summary>Gives the lease up (a clean stop), so another node takes over at once rather than after the expiry. A
    /// holder that no longer has it changes nothing.</summary>
    Task ReleaseAsync(string holder, CancellationToken cancellationToken = default);

    /// <summary>The lease as stored, or null when it was never taken.</summary>
    Task<ConnectorLeaseGrant?> GetAsync(CancellationToken cancellationToken = default);
}

/// <summary>The answer of the lease grain.</summary>
/// <param name="Granted">Whether the caller holds the lease now.</param>
/// <param name="Holder">Who holds it (null: released).</param>
/// <param name="ExpiresAt">When it expires, on the grain's clock.</param>
/// <param name="Generation">Goes up each time the lease changes hands (a fencing token).</param>
/// <param name="Duration">How long the grant lasts from the request.</param>
[GenerateSerializer, Immutable, Alias("crm.ConnectorLeaseGrant")]
public sealed record ConnectorLeaseGrant(
    [property: Id(0)] bool Granted,
    [property: Id(1)] string? Holder,
    [property: Id(2)] DateTimeOffset ExpiresAt,
    [property: Id(3)] long Generation,
    [property: Id(4)] TimeSpan Duration);
