using System.Text;
using Crm.Service.Contracts;

namespace Crm.Service.Tests.Grains;

/// <summary>Builds inbound messages for grain tests: each scenario has its own channel account, so tests sharing a cluster never see each other's data.</summary>
internal sealed class GrainScenario(IGrainFactory grains)
{
    public string Channel { get; } = "ch-" + Guid.NewGuid().ToString("N")[..12];

    public async Task<GrainScenario> CreateChannelAsync()
    {
        await grains.GetGrain<IChannelAccountGrain>(Channel).ConfigureAsync(new ChannelAccountSettings { Kind = ChannelKind.Api, Name = "test" });
        return this;
    }

    public InboundMessage Message(string externalId, string sender, string text = "hello", string? thread = null) => new()
    {
        ChannelAccountId = Channel,
        ThreadKey = thread ?? "phone:" + sender,
        ExternalMessageId = externalId,
        Sender = new SenderIdentity(IdentityKind.Phone, sender, "Customer " + sender),
        SentAt = DateTimeOffset.UtcNow,
        Text = text,
        RawSource = Encoding.UTF8.GetBytes($"{{\"messageId\":\"{externalId}\"}}"),
        RawContentType = "application/json",
    };

    public Task<IngestResult> ReceiveAsync(InboundMessage message) =>
        grains.GetGrain<IConversationGrain>(GrainKeys.Conversation(message.ChannelAccountId, message.ThreadKey)).ReceiveAsync(message);

    public static string NewPhone() => "+1" + Random.Shared.NextInt64(2_000_000_000, 9_999_999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
