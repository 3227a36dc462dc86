using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains;

/// <summary>
/// The lease on one connector's work (see <see cref="IConnectorLeaseGrain"/>). Times come from the silo's
/// <see cref="TimeProvider"/>; every answer is the store's, read in the same transaction as the write, so it keeps no
/// state of its own that could disagree with another activation.
/// </summary>
public sealed class ConnectorLeaseGrain(IConnectorLeaseStore store, TimeProvider time) : Grain, IConnectorLeaseGrain
{
    /// <summary>Longer leases would leave a dead holder's work undone for that long.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromMinutes(10);

    public Task<ConnectorLeaseGrant> AcquireAsync(string holder, TimeSpan duration, CancellationToken cancellationToken = default) =>
        TakeAsync(holder, duration, onlyIfHolder: false, cancellationToken);

    public Task<ConnectorLeaseGrant> RenewAsync(string holder, TimeSpan duration, CancellationToken cancellationToken = default) =>
        TakeAsync(holder, duration, onlyIfHolder: true, cancellationToken);

    public Task ReleaseAsync(string holder, CancellationToken cancellationToken = default)
    {
        Validate(holder, TimeSpan.FromSeconds(1));
        return store.ReleaseAsync(this.GetPrimaryKeyString(), holder, cancellationToken);
    }

    public async Task<ConnectorLeaseGrant?> GetAsync(CancellationToken cancellationToken = default) =>
        await store.FindAsync(this.GetPrimaryKeyString(), cancellationToken) is { } row ? Grant(row, null, TimeSpan.Zero) : null;

    private async Task<ConnectorLeaseGrant> TakeAsync(string holder, TimeSpan duration, bool onlyIfHolder, CancellationToken cancellationToken)
    {
        Validate(holder, duration);
        var now = time.GetUtcNow();
        var row = await store.TryTakeAsync(this.GetPrimaryKeyString(), holder, now, now + duration, onlyIfHolder, cancellationToken);
        return row is null
            ? new ConnectorLeaseGrant(false, null, now, 0, duration)
            : Grant(row, holder, duration);
    }

    private static ConnectorLeaseGrant Grant(ConnectorLeaseRecord row, string? caller, TimeSpan duration) =>
        new(caller is not null && string.Equals(row.Holder, caller, StringComparison.Ordinal), row.Holder, row.ExpiresAt, row.Generation, duration);

    private static void Validate(string holder, TimeSpan duration)
    {
        if (string.IsNullOrWhiteSpace(holder) || holder.Length > 200)
            throw new DomainException(DomainErrorKind.Invalid, "A lease holder id is 1-200 characters.", "holder");
        if (duration <= TimeSpan.Zero || duration > MaxDuration)
            throw new DomainException(DomainErrorKind.Invalid, $"A lease lasts more than 0 and at most {MaxDuration.TotalMinutes:0} minutes.", "duration");
    }
}
