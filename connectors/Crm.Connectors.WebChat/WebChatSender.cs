using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.Logging;

namespace Crm.Connectors.WebChat;

/// <summary>
/// Delivers agent replies to web chat visitors: publishes the reply to the conversation's session grain, which pushes it
/// to every node holding a connection of that visitor. The reply is already stored, so a visitor who is offline now
/// reads it in the history when they return; "sent" means it is available to the visitor, not that they saw it (that
/// is the read receipt).
/// </summary>
internal sealed class WebChatSender(IGrainFactory grains, IChannelAccounts accounts, ILogger<WebChatSender> logger) : IOutboundSender
{
    public ChannelKind Channel => ChannelKind.WebChat;

    public async Task<OutboundResult> SendAsync(OutboundDelivery delivery, CancellationToken cancellationToken = default)
    {
        if (accounts.Find(delivery.ChannelAccountId) is not { Kind: ChannelKind.WebChat })
            return OutboundResult.Fail($"There is no web chat widget '{delivery.ChannelAccountId}'.");
        try
        {
            var line = new ChatLine(delivery.MessageId, "agent", delivery.Text, delivery.CreatedAt);
            await grains.GetGrain<IWebChatSessionGrain>(GrainKeys.Conversation(delivery.ChannelAccountId, delivery.ThreadKey))
                .PublishAsync(new VisitorEvent(VisitorEventKind.Message, line)).WaitAsync(cancellationToken);
            return OutboundResult.Sent(delivery.MessageId.ToString());
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "Pushing reply {Message} to web chat {Conversation} failed", delivery.MessageId, delivery.ThreadKey);
            return OutboundResult.Retry("The web chat push failed: " + ex.Message);
        }
    }
}
