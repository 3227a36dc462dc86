using Crm.Connectors.WebChat;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Orleans.TestingHost;

namespace Crm.Service.Tests.WebChat;

/// <summary>
/// The push path's grain in a two-silo Orleans cluster: whichever silo it lands on, it notifies every subscribed node
/// (observers living outside the silo that publishes), for replies, agent typing and read marks, and stops notifying a
/// node that unsubscribed. Typing and read marks are kept in memory only.
/// </summary>
public sealed class SessionGrainTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(2);
        builder.AddSiloBuilderConfigurator<Configurator>();
        _cluster = builder.Build();
        await _cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await _cluster.StopAllSilosAsync();
        await _cluster.DisposeAsync();
    }

    private sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.Services.AddOptions<WebChatOptions>();
            siloBuilder.Services.TryAddSingleton(TimeProvider.System);
        }
    }

    private sealed class RecordingNode : IVisitorNode
    {
        public List<(string Key, VisitorEvent Event)> Events { get; } = [];

        public Task OnEventAsync(string conversationKey, VisitorEvent visitorEvent)
        {
            lock (Events)
                Events.Add((conversationKey, visitorEvent));
            return Task.CompletedTask;
        }

        public int Count
        {
            get
            {
                lock (Events)
                    return Events.Count;
            }
        }
    }

    [Fact]
    public async Task Replies_typing_and_read_marks_reach_every_subscribed_node_and_stop_after_unsubscribe()
    {
        var nodeA = new RecordingNode();
        var nodeB = new RecordingNode();
        var refA = _cluster.Client.CreateObjectReference<IVisitorNode>(nodeA);
        var refB = _cluster.Client.CreateObjectReference<IVisitorNode>(nodeB);
        const string key = "shop:0123456789abcdef0123456789abcdef";
        var session = _cluster.GrainFactory.GetGrain<IWebChatSessionGrain>(key);
        await session.SubscribeAsync(refA);
        await session.SubscribeAsync(refB);

        var line = new ChatLine(Guid.NewGuid(), "agent", "On its way", DateTimeOffset.UtcNow);
        await session.PublishAsync(new VisitorEvent(VisitorEventKind.Message, line));
        await session.AgentActivityAsync(typing: true, readUpTo: line.Id);
        // Read at once: typing lasts 6 s of real time, which a stall while waiting for the events could use up.
        var activity = await session.GetActivityAsync();
        await Eventually.WaitForAsync(() => Task.FromResult(nodeA.Count + nodeB.Count), n => n == 6, what: "three events on both nodes");

        foreach (var node in new[] { nodeA, nodeB })
        {
            Assert.All(node.Events, e => Assert.Equal(key, e.Key));
            Assert.Equal("On its way", node.Events.Single(e => e.Event.Kind == VisitorEventKind.Message).Event.Line!.Text);
            Assert.True(node.Events.Single(e => e.Event.Kind == VisitorEventKind.Typing).Event.Typing);
            Assert.Equal(line.Id, node.Events.Single(e => e.Event.Kind == VisitorEventKind.Read).Event.ReadUpTo);
        }
        Assert.NotNull(activity.AgentTypingUntil);
        Assert.Equal(line.Id, activity.AgentReadUpTo);

        await session.UnsubscribeAsync(refA);
        await session.PublishAsync(new VisitorEvent(VisitorEventKind.Message, line with { Id = Guid.NewGuid(), Text = "Second" }));
        await Eventually.WaitForAsync(() => Task.FromResult(nodeB.Count), n => n == 4, what: "the second reply on node B");
        Assert.Equal(3, nodeA.Count);
        // Another conversation's grain knows neither node.
        await _cluster.GrainFactory.GetGrain<IWebChatSessionGrain>("shop:ffffffffffffffffffffffffffffffff")
            .PublishAsync(new VisitorEvent(VisitorEventKind.Message, line));
        await session.PublishAsync(new VisitorEvent(VisitorEventKind.Typing, Typing: false));
        await Eventually.WaitForAsync(() => Task.FromResult(nodeB.Count), n => n == 5, what: "the typing stop on node B");
        Assert.DoesNotContain(nodeB.Events, e => e.Key != key);
    }
}
