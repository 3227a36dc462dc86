namespace Crm.Service.Grains.Storage;

/// <summary>One connector lease as stored (table ConnectorLeases): who holds it and until when.</summary>
public sealed class ConnectorLeaseRecord
{
    public required string Key { get; set; }
    /// <summary>Null once released.</summary>
    public string? Holder { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    /// <summary>Goes up each time the lease changes hands.</summary>
    public long Generation { get; set; }
    /// <summary>When the current holder took it.</summary>
    public DateTimeOffset AcquiredAt { get; set; }
}

/// <summary>
/// The durable side of <see cref="IConnectorLeaseGrain"/>: every grant is one conditional write in one transaction, so
/// the store, not an activation's memory, decides who holds a lease (two activations on one store cannot both win).
/// </summary>
public interface IConnectorLeaseStore
{
    /// <summary>Gives the lease to <paramref name="holder"/> until <paramref name="expiresAt"/> when it is free, expired at
    /// <paramref name="now"/>, or already the holder's; with <paramref name="onlyIfHolder"/>, only in the last case.
    /// Returns the row as it stands after the attempt (the caller compares its holder).</summary>
    Task<ConnectorLeaseRecord?> TryTakeAsync(string key, string holder, DateTimeOffset now, DateTimeOffset expiresAt, bool onlyIfHolder, CancellationToken cancellationToken = default);

    /// <summary>Frees the lease if <paramref name="holder"/> has it.</summary>
    Task ReleaseAsync(string key, string holder, CancellationToken cancellationToken = default);

    Task<ConnectorLeaseRecord?> FindAsync(string key, CancellationToken cancellationToken = default);
}
