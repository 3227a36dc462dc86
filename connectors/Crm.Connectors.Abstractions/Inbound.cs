using Crm.Service.Contracts;

namespace Crm.Connectors.Abstractions;

/// <summary>
/// Where a connector hands an inbound message to the core. When <see cref="HandOffAsync"/> returns, the message is
/// durably stored (or was already: <see cref="IngestResult.Duplicate"/>); only then may the connector acknowledge
/// its source (answer 202, mark the mail seen, confirm the update offset). See docs/connectors.md.
/// </summary>
public interface IInboundHandOff
{
    /// <exception cref="DomainException">The message is refused (unknown or disabled account, invalid content); nothing was stored.</exception>
    Task<IngestResult> HandOffAsync(InboundMessage message, CancellationToken cancellationToken = default);
}

/// <summary>The hand-off to the conversation grain, with the identity rule applied first (see <see cref="IdentityScope"/>).</summary>
internal sealed class ConversationHandOff(IGrainFactory grains, IChannelAccounts accounts, ChannelSettingsCatalog catalog) : IInboundHandOff
{
    public Task<IngestResult> HandOffAsync(InboundMessage message, CancellationToken cancellationToken = default)
    {
        var account = accounts.Find(message.ChannelAccountId)
            ?? throw new DomainException(DomainErrorKind.NotFound, $"There is no channel '{message.ChannelAccountId}'.", "channelId");
        if (!account.Enabled)
            throw new DomainException(DomainErrorKind.Forbidden, $"Channel '{account.Id}' is disabled; an admin can enable it.", "channelId");
        var sender = IdentityScope.Apply(message.Sender, account, catalog.Find(account.Kind));
        var scoped = message with { Sender = sender };
        // A thread named after its sender (the default when a connector has no thread of its own) is named after the
        // scoped identity, so changing an account's trust starts a new conversation instead of orphaning the old one.
        if (sender != message.Sender && message.ThreadKey == GrainKeys.Identity(message.Sender.Kind, message.Sender.Value, message.ChannelAccountId))
            scoped = scoped with { ThreadKey = GrainKeys.Identity(sender.Kind, sender.Value, message.ChannelAccountId) };
        return grains.GetGrain<IConversationGrain>(GrainKeys.Conversation(scoped.ChannelAccountId, scoped.ThreadKey)).ReceiveAsync(scoped, cancellationToken);
    }
}

/// <summary>
/// Which identities a channel account may assert. A kind's own identity kinds (an email channel's addresses, a Telegram
/// bot's user ids) are global: the same address on two channels is one customer. Any other kind is only a claim by
/// whoever runs the account, so it stays scoped to the account (an external identity) unless an admin listed the kind
/// in the account's <see cref="IChannelSettings.TrustedIdentityKinds"/>. Without this, any API bridge could post as
/// "email:ceo@client.com" and read that customer's profile through its thread.
/// </summary>
public static class IdentityScope
{
    public static SenderIdentity Apply(SenderIdentity sender, ChannelAccount account, ChannelSettingsDefinition? definition)
    {
        if (sender.Kind == IdentityKind.External
            || definition?.OwnIdentityKinds.Contains(sender.Kind) == true
            || account.Settings?.TrustedIdentityKinds.Contains(sender.Kind) == true)
            return sender;
        // Normalized, so the spellings of one address remain one identity within the account.
        var value = sender.Kind switch
        {
            IdentityKind.Email => IdentityNormalizer.Email(sender.Value),
            IdentityKind.Phone => IdentityNormalizer.Phone(sender.Value),
            _ => sender.Value.Trim(),
        };
        return sender with { Kind = IdentityKind.External, Value = $"{sender.Kind.ToString().ToLowerInvariant()}:{value}" };
    }
}
