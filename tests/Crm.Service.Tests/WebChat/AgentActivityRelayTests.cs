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
        // Typing is shown for a few seconds only, so a typing signal that waited longer may be dropped as stale; the
        // agent's typing once the side answers again reaches it.
        await hub.InvokeAsync("Typing", ticket, "reply").WaitAsync(bound);
        await Eventually.WaitForAsync(() => Task.FromResult(sink.Calls.ToArray()), c => c.Any(x => x.Typing == true), what: "the typing signal after the side answers again");
    }

    /// <summary>Review WV5: one ticket whose session grain does not answer (an agent typing on it all the while) holds
    /// up neither the other tickets' signals nor, by piling up, the relay: a read mark on another ticket arrives while
    /// the first ticket's signal is still stalled (its bound is set far beyond the test's patience), and the stalled
    /// ticket's signals wait as one.</summary>
    [Fact]
    public async Task A_ticket_whose_visitor_side_stalls_does_not_hold_up_other_tickets()
    {
        var sink = new StalledSink();
        await using var rig = await WebChatRig.StartAsync(services: s =>
        {
            s.RemoveAll<IAgentActivitySink>();
            s.AddSingleton<IAgentActivitySink>(sink);
        });
        var (stalledThread, stalled) = await ChatAsync(rig, "c-a");
        var (_, other) = await ChatAsync(rig, "c-b");
        sink.Stalls = thread => thread == stalledThread;
        var relay = rig.App.Services.GetRequiredService<AgentConsole.AgentActivityRelay>();
        relay.SignalTimeout = TimeSpan.FromMinutes(10);

        for (var i = 0; i < 50; i++)
            relay.Typing(stalled);
        await Eventually.WaitForAsync(() => Task.FromResult(sink.Calls.Count(c => c.Thread == stalledThread)), n => n >= 1, what: "the stalled ticket's first signal");
        relay.Read(other);

        await Eventually.WaitForAsync(() => Task.FromResult(sink.Calls.ToArray()), c => c.Any(x => x.Thread != stalledThread && x.Read is not null),
            what: "the other ticket's read mark while the first is stalled");
        Assert.Equal(0, sink.Cancelled);
        // The 49 typing signals that came while the first was under way wait as one, not as 49 more relays.
        Assert.Equal(1, sink.Calls.Count(c => c.Thread == stalledThread));
    }

    /// <summary>Review WV8a: each signal is bounded by <see cref="AgentConsole.AgentActivityRelay.SignalTimeout"/> (a sink
    /// that honours its token is cancelled) and the ticket's next signal is relayed after it without any release.</summary>
    [Fact]
    public async Task A_stalled_signal_is_cancelled_at_its_bound_and_the_next_one_goes_out()
    {
        var sink = new StalledSink();
        await using var rig = await WebChatRig.StartAsync(services: s =>
        {
            s.RemoveAll<IAgentActivitySink>();
            s.AddSingleton<IAgentActivitySink>(sink);
        });
        var (thread, ticket) = await ChatAsync(rig, "c-a");
        var relay = rig.App.Services.GetRequiredService<AgentConsole.AgentActivityRelay>();
        relay.SignalTimeout = TimeSpan.FromSeconds(2);

        relay.Read(ticket);
        await Eventually.WaitForAsync(() => Task.FromResult(sink.Calls.Count), n => n >= 1, what: "the first signal");
        relay.Read(ticket);

        await Eventually.WaitForAsync(() => Task.FromResult(sink.Cancelled), n => n >= 1, TimeSpan.FromSeconds(60), what: "the first signal cancelled at its bound");
        await Eventually.WaitForAsync(() => Task.FromResult(sink.Calls.Count(c => c.Thread == thread && c.Read is not null)), n => n >= 2, TimeSpan.FromSeconds(60),
            what: "the second signal relayed without a release");
    }

    /// <summary>Review WC2: a ticket whose relay ran into its bound is held back before its next relay, so eight stalled
    /// tickets an agent keeps typing on (a dead silo's session grains) do not take every place again at once: once all
    /// eight timed out, new typing on them waits, and a read mark on a ninth ticket goes out without one more stalled
    /// relay before it.</summary>
    [Fact]
    public async Task Stalled_tickets_that_timed_out_are_held_back_and_do_not_retake_every_place()
    {
        var sink = new StalledSink();
        await using var rig = await WebChatRig.StartAsync(services: s =>
        {
            s.RemoveAll<IAgentActivitySink>();
            s.AddSingleton<IAgentActivitySink>(sink);
        });
        var stalled = new List<(string Thread, long Ticket)>();
        for (var i = 0; i < AgentConsole.AgentActivityRelay.Workers; i++)
            stalled.Add(await ChatAsync(rig, "c-" + i));
        var (otherThread, other) = await ChatAsync(rig, "c-other");
        var stalledThreads = stalled.Select(s => s.Thread).ToHashSet();
        sink.Stalls = stalledThreads.Contains;
        var relay = rig.App.Services.GetRequiredService<AgentConsole.AgentActivityRelay>();
        relay.SignalTimeout = TimeSpan.FromSeconds(1);
        relay.HoldBack = TimeSpan.FromMinutes(10);

        foreach (var (_, ticket) in stalled)
            relay.Typing(ticket);
        await Eventually.WaitForAsync(() => Task.FromResult(sink.Cancelled), n => n >= stalled.Count, TimeSpan.FromSeconds(60), what: "every stalled relay ran into its bound");
        // The agents keep typing; without the hold-back each of these takes a place (and stalls) before the read mark.
        foreach (var (_, ticket) in stalled)
            relay.Typing(ticket);
        relay.Read(other);

        await Eventually.WaitForAsync(() => Task.FromResult(sink.Calls.ToArray()), c => c.Any(x => x.Thread == otherThread && x.Read is not null),
            TimeSpan.FromSeconds(60), what: "the ninth ticket's read mark");
        Assert.Equal(stalled.Count, sink.Calls.Count(c => stalledThreads.Contains(c.Thread)));
    }

    private static async Task<(string Thread, long Ticket)> ChatAsync(WebChatRig rig, string clientId)
    {
        var session = await rig.StartSessionAsync();
        await using var visitor = rig.Visitor(session.Token);
        await visitor.StartAsync();
        var sent = await visitor.InvokeAsync<SendAck>("Send", session.ConversationId, clientId, "Is anyone there?");
        var ticket = await rig.TicketOfAsync(sent.MessageId);
        var thread = await rig.App.QueryAsync(db => db.Messages.Where(m => m.Id == sent.MessageId)
            .Join(db.Conversations, m => m.ConversationId, c => c.Id, (_, c) => c.ThreadKey).SingleAsync());
        return (thread, ticket);
    }

    private sealed class StalledSink : IAgentActivitySink
    {
        private int _cancelled;

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<(string Thread, bool? Typing, Guid? Read)> Calls { get; } = new();

        /// <summary>Which threads stall (all by default).</summary>
        public Func<string, bool> Stalls { get; set; } = _ => true;

        /// <summary>Signals given up by the relay (their token cancelled) while stalled.</summary>
        public int Cancelled => Volatile.Read(ref _cancelled);

        public ChannelKind Channel => ChannelKind.WebChat;

        public async Task AgentActivityAsync(string channelAccountId, string threadKey, bool? typing, Guid? readUpTo, CancellationToken cancellationToken = default)
        {
            Calls.Enqueue((threadKey, typing, readUpTo));
            if (!Stalls(threadKey))
                return;
            // Stalls like an unreachable grain, until released or until the relay gives up on it (review WV8a).
            try
            {
                await Release.Task.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref _cancelled);
                throw;
            }
        }
    }
}
