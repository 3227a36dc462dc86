using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains;

/// <summary>Single writer of one outbound message's delivery status. The status only moves forward
/// (queued → sent → delivered); a failure can be retried back to queued, and a delivered message stays delivered.</summary>
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
        await store.CommitAsync(new WriteSet().Add(
            new SetDelivery(this.GetPrimaryKey(), update.Status, update.Reason, update.ExternalId, time.GetUtcNow())), cancellationToken);
        _current = update.Status;
    }

    internal static bool IsAllowed(DeliveryStatus from, DeliveryStatus to) => (from, to) switch
    {
        (DeliveryStatus.Delivered, _) => false,
        (DeliveryStatus.Sent, DeliveryStatus.Queued) => false,
        (_, DeliveryStatus.None) => false,
        _ => true,
    };
}
