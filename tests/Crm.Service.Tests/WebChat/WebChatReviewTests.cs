using Crm.Connectors.WebChat;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.WebChat;

/// <summary>Findings of the second web chat review (review file webchat2-review.md), each with the test that failed before the fix.</summary>
public sealed class WebChatReviewTests
{
    private static FakeTimeProvider Clock() => new(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task V1_a_renewal_whose_answer_was_lost_does_not_cost_the_visitor_the_conversation()
    {
        var clock = Clock();
        await using var rig = await WebChatRig.StartAsync(services: s => s.AddFakeGrainClock(clock));
        var t0 = await rig.StartSessionAsync();
        await using (var hub = rig.Visitor(t0.Token))
        {
            await hub.StartAsync();
            await hub.InvokeAsync<SendAck>("Send", t0.ConversationId, "c-1", "My order 4711");
        }
        clock.Advance(TimeSpan.FromHours(25));
        // The renewal is committed, but its answer never reaches the widget (the visitor left the page mid-request).
        _ = await rig.StartSessionAsync(t0.Token);
        // The next page view still holds t0.
        var again = await rig.StartSessionAsync(t0.Token);
        clock.Advance(TimeSpan.FromMinutes(3));
        var later = await rig.StartSessionAsync(again.Token);
        Assert.False(later.NewVisitor);
        Assert.Equal(t0.ConversationId, later.ConversationId);
        await using var back = rig.Visitor(later.Token);
        await back.StartAsync();
        Assert.Equal(["My order 4711"], (await back.InvokeAsync<ChatHistory>("History", later.ConversationId)).Lines.Select(l => l.Text));
    }
}
