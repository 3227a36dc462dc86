using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.Logging;

namespace Crm.Connectors.WebChat;

/// <summary>
/// Delivers agent replies to web chat visitors: publishes the reply to the conversation's session grain, which pushes it
/// to every node holding a connection of that visitor. The reply is already stored, so a visitor who is offline now
/// reads it in the history when they return; "sent" means it is available to the visitor, not that they saw it (that
/// is the read receipt). A visitor with no open connection who proved an email address (the offline form, the pre-chat
/// form) also gets the reply by email through the widget's email channel; an address only typed, never proven, gets
/// nothing (the helpdesk must not mail strangers), and the reply waits in the chat history.
/// </summary>
internal sealed class WebChatSender(IGrainFactory grains, IChannelAccounts accounts, IWebChatVisitorStore visitors, WidgetMail mail, ILogger<WebChatSender> logger) : IOutboundSender
{
    public ChannelKind Channel => ChannelKind.WebChat;

    public async Task<OutboundResult> SendAsync(OutboundDelivery delivery, CancellationToken cancellationToken = default)
    {
        if (accounts.Find(delivery.ChannelAccountId) is not { Kind: ChannelKind.WebChat } account)
            return OutboundResult.Fail($"There is no web chat widget '{delivery.ChannelAccountId}'.");
        var session = grains.GetGrain<IWebChatSessionGrain>(GrainKeys.Conversation(delivery.ChannelAccountId, delivery.ThreadKey));
        bool live;
        try
        {
            var line = new ChatLine(delivery.MessageId, "agent", delivery.Text, delivery.CreatedAt);
            await session.PublishAsync(new VisitorEvent(VisitorEventKind.Message, line)).WaitAsync(cancellationToken);
            live = await session.HasVisitorAsync().WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "Pushing reply {Message} to web chat {Conversation} failed", delivery.MessageId, delivery.ThreadKey);
            return OutboundResult.Retry("The web chat push failed: " + ex.Message);
        }
        if (live || account.SettingsAs<WebChatSettings>() is not { } settings || mail.AccountOf(settings) is not { } mailAccount)
            return OutboundResult.Sent(delivery.MessageId.ToString());
        if (await visitors.FindConversationIdentityAsync(delivery.ChannelAccountId, delivery.ThreadKey, cancellationToken) is not { } visitorKey
            || await grains.GetGrain<IWebChatVisitorGrain>(visitorKey).GetAsync() is not { VerifiedEmail: { } email, Blocked: false })
            return OutboundResult.Sent(delivery.MessageId.ToString());
        var text = (delivery.Text ?? "") + $"\n\n--\nYou wrote to us in the chat on our website (ticket #{delivery.TicketNumber}). To answer, open the chat on our website again.";
        var sent = await mail.SendAsync(mailAccount, email, $"Re: your chat with {settings.Title.En ?? "us"} [#{delivery.TicketNumber}]", text, cancellationToken);
        if (sent.Success)
            return OutboundResult.Sent(delivery.MessageId.ToString());
        var error = $"The visitor is offline and mailing the reply to their address failed: {sent.Error}";
        return sent.Permanent ? OutboundResult.Fail(error + " (the reply is in the visitor's chat history)") : OutboundResult.Retry(error);
    }
}

/// <summary>An agent's typing and read mark from the console (<see cref="IAgentActivitySink"/>) reach the visitor's widget
/// through the conversation's session grain, like the activity API's: on whatever node the visitor is connected.</summary>
internal sealed class WebChatAgentActivity(IGrainFactory grains) : IAgentActivitySink
{
    public ChannelKind Channel => ChannelKind.WebChat;

    public Task AgentActivityAsync(string channelAccountId, string threadKey, bool? typing, Guid? readUpTo, CancellationToken cancellationToken = default) =>
        grains.GetGrain<IWebChatSessionGrain>(GrainKeys.Conversation(channelAccountId, threadKey)).AgentActivityAsync(typing, readUpTo).WaitAsync(cancellationToken);
}
