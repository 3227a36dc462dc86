using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains;

/// <summary>Single writer of one outbound message's delivery status. The status only moves forward
/// (queued → sent → delivered, or queued/sent → failed); delivered and failed are final, so a late or replayed
/// receipt can never move it back.</summary>
public sealed class MessageDeliveryGrain(ICrmStore store, TimeProvider time) : Grain, IMessageDeliveryGrain
{
    private DeliveryStatus? _current;
    private string? _channelAccountId;

    public async Task UpdateAsync(DeliveryUpdate update, CancellationToken cancellationToken = default)
    {
        if (_current is null)
        {
            var message = await store.FindMessageAsync(this.GetPrimaryKey(), cancellationToken)
                ?? throw new DomainException(DomainErrorKind.NotFound, $"No message {this.GetPrimaryKey()}.", "messageId");
            if (message.Direction != MessageDirection.Outbound)
                throw new DomainException(DomainErrorKind.Conflict, "Only outbound messages have a delivery status.", "messageId");
            _current = message.Delivery;
            _channelAccountId = message.ChannelAccountId;
        }
        if (update.ChannelAccountId is { } reporter && reporter != _channelAccountId)
            throw new DomainException(DomainErrorKind.NotFound, $"No message {this.GetPrimaryKey()} was sent on channel '{reporter}'.", "messageId");
        if (!IsAllowed(_current.Value, update.Status))
            return;
        // Only the channel can say a message it took has failed after all; the outbox, which may resend after a
        // crash and be refused as a repeat, never moves a sent message to failed.
        if (update.ChannelAccountId is null && update.Status == DeliveryStatus.Failed && _current != DeliveryStatus.Queued)
            return;
        await store.CommitAsync(new WriteSet().Add(
            new SetDelivery(this.GetPrimaryKey(), update.Status, update.Reason, update.ExternalId, time.GetUtcNow())), cancellationToken);
        _current = update.Status;
    }

    /// <summary>Whether a report may move the status from <paramref name="from"/> to <paramref name="to"/>. Queued to
    /// queued is the dispatcher noting a failed attempt that will be retried; every other move is strictly forward.</summary>
    internal static bool IsAllowed(DeliveryStatus from, DeliveryStatus to) => (from, to) switch
    {
        (DeliveryStatus.Delivered or DeliveryStatus.Failed or DeliveryStatus.None, _) => false,
        (DeliveryStatus.Queued, DeliveryStatus.Queued) => true,
        (_, DeliveryStatus.Failed) => true,
        (_, DeliveryStatus.Sent or DeliveryStatus.Delivered) => Rank(to) > Rank(from),
        _ => false,
    };

    private static int Rank(DeliveryStatus status) => status switch
    {
        DeliveryStatus.Queued => 1,
        DeliveryStatus.Sent => 2,
        DeliveryStatus.Delivered => 3,
        _ => 0,
    };
}
