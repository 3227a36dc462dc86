using Crm.Service.Contracts;

namespace Crm.Connectors.Abstractions;

/// <summary>
/// What an agent does in the console that a live channel shows its customer: the agent is typing, and has read the
/// customer's messages up to one (web chat: the widget's "An agent is typing…" and "Read"). A channel that can show
/// these registers one; the console relays to the channel of the ticket's conversation, and other channels ignore them.
/// Ephemeral: nothing is stored.
/// </summary>
public interface IAgentActivitySink
{
    ChannelKind Channel { get; }

    Task AgentActivityAsync(string channelAccountId, string threadKey, bool? typing, Guid? readUpTo, CancellationToken cancellationToken = default);
}
