using Crm.Service.Contracts;

namespace Crm.Service.Grains;

/// <summary>
/// Runs merges of one kind one at a time (see <see cref="IMergeCoordinatorGrain"/>). A merge only ever calls from
/// the source into the target, and with no second merge running, no grain of the pair is waiting on the other: the
/// call graph has no cycle. A merge whose target was merged meanwhile is refused, so merges never form a loop
/// (A into B into A) either.
/// </summary>
public sealed class MergeCoordinatorGrain : Grain, IMergeCoordinatorGrain
{
    public Task<TicketSnapshot> MergeTicketsAsync(long sourceNumber, long targetNumber, string actor, CancellationToken cancellationToken = default)
    {
        EnsureKey(IMergeCoordinatorGrain.Tickets);
        return GrainFactory.GetGrain<ITicketGrain>(sourceNumber).MergeIntoAsync(targetNumber, actor, cancellationToken);
    }

    public Task<CustomerSnapshot> MergeCustomersAsync(Guid sourceCustomerId, Guid targetCustomerId, string actor, CancellationToken cancellationToken = default)
    {
        EnsureKey(IMergeCoordinatorGrain.Customers);
        return GrainFactory.GetGrain<ICustomerGrain>(targetCustomerId).MergeFromAsync(sourceCustomerId, actor, cancellationToken);
    }

    // One coordinator per kind is what serializes: a merge sent to another key would run beside the others.
    private void EnsureKey(string expected)
    {
        if (this.GetPrimaryKeyString() != expected)
            throw new InvalidOperationException($"Merges of this kind go through the coordinator '{expected}', not '{this.GetPrimaryKeyString()}'.");
    }
}
