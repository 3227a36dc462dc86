using System.Collections.Concurrent;
using Crm.Connectors.Abstractions;
using Crm.Connectors.WebChat;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Crm.Service.Tests.WebChat;

/// <summary>The console's typing and reading reach a web chat visitor over the agents' hub (review KW10, KW11, KW12).</summary>
public sealed class AgentActivityRelayTests
{
    private const string Agent = "relay-agent@example.com";

    /// <summary>Review KW11: typing an internal note never shows "An agent is typing…" to the customer; the public reply
    /// box does. The relay is one ordered queue, so once a read mark posted after the note arrived, the note's typing
    /// would have arrived before it.</summary>
    [Fact]
    public async Task Typing_a_note_never_reaches_the_visitor_typing_a_reply_does()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        await using var visitor = rig.Visitor(session.Token);
        var events = new ConcurrentQueue<string>();
        visitor.On<bool>("Typing", t => events.Enqueue("typing:" + t));
        visitor.On<Guid>("Read", m => events.Enqueue("read:" + m));
        await visitor.StartAsync();
        var first = await visitor.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Is anyone there?");
        var ticket = await rig.TicketOfAsync(first.MessageId);

        using var agent = await ConsoleBrowser.SignedInAsync(rig.App, Agent, ConsoleRoles.Agent);
        await using var hub = agent.AgentHub(rig.App);
        await hub.StartAsync();
        await hub.InvokeAsync("WatchTicket", ticket);
        await Eventually.WaitForAsync(() => Task.FromResult(events.ToArray()), e => e.Contains("read:" + first.MessageId), what: "the first read mark");

        await hub.InvokeAsync("Typing", ticket, "note");
        var second = await visitor.InvokeAsync<SendAck>("Send", session.ConversationId, "c-2", "Hello?");
        await hub.InvokeAsync("UnwatchTicket", ticket);
        await hub.InvokeAsync("WatchTicket", ticket);
        await Eventually.WaitForAsync(() => Task.FromResult(events.ToArray()), e => e.Contains("read:" + second.MessageId), what: "the second read mark");
        Assert.DoesNotContain("typing:True", events);
        Assert.Null((await rig.App.Grains.GetGrain<IWebChatSessionGrain>(GrainKeys.Conversation(WebChatRig.Widget, session.ConversationId)).GetActivityAsync()).AgentTypingUntil);

        await hub.InvokeAsync("Typing", ticket, "reply");
        await Eventually.WaitForAsync(() => Task.FromResult(events.ToArray()), e => e.Contains("typing:True"), what: "the reply's typing");
    }

    /// <summary>Review KW12: the agents' hub does not wait for the visitor's side. With the channel's side stalled (an
    /// unreachable session grain), the agent's typing and opening the ticket return at once and the agent's next calls
    /// are answered; the signals reach the channel once it answers again.</summary>
    [Fact]
    public async Task A_stalled_visitor_side_does_not_stall_the_agents_hub()
    {
        var sink = new StalledSink();
        await using var rig = await WebChatRig.StartAsync(services: s =>
        {
            s.RemoveAll<IAgentActivitySink>();
            s.AddSingleton<IAgentActivitySink>(sink);
        });
        var session = await rig.StartSessionAsync();
        await using var visitor = rig.Visitor(session.Token);
        await visitor.StartAsync();
        var sent = await visitor.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Is anyone there?");
        var ticket = await rig.TicketOfAsync(sent.MessageId);

        using var agent = await ConsoleBrowser.SignedInAsync(rig.App, Agent, ConsoleRoles.Agent);
        await using var hub = agent.AgentHub(rig.App);
        await hub.StartAsync();
        // Generous bounds: a hub that awaited the stalled side would not answer until the sink is released.
        var bound = TimeSpan.FromSeconds(60);
        await hub.InvokeAsync("WatchTicket", ticket).WaitAsync(bound);
        await Eventually.WaitForAsync(() => Task.FromResult(sink.Calls.Count), c => c >= 1, what: "the read mark reached the stalled side");
        await hub.InvokeAsync("Typing", ticket, "reply").WaitAsync(bound);
        await hub.InvokeAsync<object>("GetCounts").WaitAsync(bound);
        sink.Release.TrySetResult();
        await Eventually.WaitForAsync(() => Task.FromResult(sink.Calls.ToArray()), c => c.Any(x => x.Typing == true), what: "the typing signal after the side answers again");
    }

    private sealed class StalledSink : IAgentActivitySink
    {
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<(string Thread, bool? Typing, Guid? Read)> Calls { get; } = new();

        public ChannelKind Channel => ChannelKind.WebChat;

        public async Task AgentActivityAsync(string channelAccountId, string threadKey, bool? typing, Guid? readUpTo, CancellationToken cancellationToken = default)
        {
            Calls.Enqueue((threadKey, typing, readUpTo));
            // Stalls like an unreachable grain; a cancelled signal is dropped (the relay bounds each one).
            await Release.Task;
        }
    }
}
