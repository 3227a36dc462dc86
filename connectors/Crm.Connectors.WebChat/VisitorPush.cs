using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Utilities;

namespace Crm.Connectors.WebChat;

/// <summary>One line of a chat as the visitor sees it. <see cref="From"/> is "visitor" or "agent"; no agent's
/// name or address is ever sent to a visitor.</summary>
[GenerateSerializer, Immutable, Alias("crm.webchat.ChatLine")]
public sealed record ChatLine(
    [property: Id(0)] Guid Id,
    [property: Id(1)] string From,
    [property: Id(2)] string? Text,
    [property: Id(3)] DateTimeOffset At,
    [property: Id(4)] string? ClientMessageId = null,
    [property: Id(5)] int Attachments = 0);

public enum VisitorEventKind
{
    /// <summary>A new line of the conversation (an agent's reply, or the visitor's own message seen from another tab).</summary>
    Message,
    /// <summary>The agent started or stopped typing.</summary>
    Typing,
    /// <summary>The agent read the visitor's messages up to <see cref="VisitorEvent.ReadUpTo"/>.</summary>
    Read,
    /// <summary>The visitor's tokens below generation <see cref="VisitorEvent.EndedBelow"/> were revoked (or the visitor
    /// blocked): every node closes its connections of the conversation made with such a token.</summary>
    Ended,
}

[GenerateSerializer, Immutable, Alias("crm.webchat.VisitorEvent")]
public sealed record VisitorEvent(
    [property: Id(0)] VisitorEventKind Kind,
    [property: Id(1)] ChatLine? Line = null,
    [property: Id(2)] bool Typing = false,
    [property: Id(3)] Guid? ReadUpTo = null,
    [property: Id(4)] int EndedBelow = 0);

/// <summary>What a conversation's two sides are doing right now: ephemeral, in memory, never stored.</summary>
[GenerateSerializer, Immutable, Alias("crm.webchat.SessionActivity")]
public sealed record SessionActivity(
    [property: Id(0)] DateTimeOffset? VisitorTypingUntil,
    [property: Id(1)] Guid? VisitorReadUpTo,
    [property: Id(2)] DateTimeOffset? AgentTypingUntil,
    [property: Id(3)] Guid? AgentReadUpTo);

/// <summary>A node that holds visitor connections: the session grain pushes events to it and it forwards them to its
/// local SignalR connections of that conversation.</summary>
public interface IVisitorNode : IGrainObserver
{
    [OneWay]
    Task OnEventAsync(string conversationKey, VisitorEvent visitorEvent);
}

/// <summary>
/// The live side of one web chat conversation, keyed like its conversation grain (<c>widget:session</c>), on whatever
/// silo Orleans places it. Nodes holding the visitor's connections subscribe; an agent's reply (from the outbound
/// sender, on any node), typing and read receipts are published here and reach every subscribed node. Nothing here is
/// stored: messages are already durable in the store (a visitor who missed a push reads them in the history), typing
/// and read marks are ephemeral.
/// </summary>
public interface IWebChatSessionGrain : IGrainWithStringKey
{
    Task SubscribeAsync(IVisitorNode node);

    Task UnsubscribeAsync(IVisitorNode node);

    Task PublishAsync(VisitorEvent visitorEvent);

    /// <summary>The visitor types (or stopped) and/or read the agent's lines up to a message.</summary>
    Task VisitorActivityAsync(bool? typing, Guid? readUpTo);

    /// <summary>An agent types (or stopped) and/or read the visitor's lines up to a message; pushed to the visitor.</summary>
    Task AgentActivityAsync(bool? typing, Guid? readUpTo);

    [AlwaysInterleave]
    Task<SessionActivity> GetActivityAsync();

    /// <summary>Whether any node holds a connection of the visitor (a live subscription).</summary>
    [AlwaysInterleave]
    Task<bool> HasVisitorAsync();
}

internal sealed class WebChatSessionGrain : Grain, IWebChatSessionGrain
{
    /// <summary>A "typing" mark expires unless renewed, so a closed tab never types forever.</summary>
    internal static readonly TimeSpan TypingFor = TimeSpan.FromSeconds(6);

    private readonly ObserverManager<IVisitorNode> _nodes;
    private readonly TimeProvider _time;
    private SessionActivity _activity = new(null, null, null, null);

    public WebChatSessionGrain(IOptions<WebChatOptions> options, TimeProvider time, ILogger<WebChatSessionGrain> logger)
    {
        _time = time;
        _nodes = new ObserverManager<IVisitorNode>(options.Value.PushSubscriptionLifetime, logger);
    }

    public Task SubscribeAsync(IVisitorNode node)
    {
        _nodes.Subscribe(node, node);
        return Task.CompletedTask;
    }

    public Task UnsubscribeAsync(IVisitorNode node)
    {
        _nodes.Unsubscribe(node);
        return Task.CompletedTask;
    }

    public Task PublishAsync(VisitorEvent visitorEvent)
    {
        var key = this.GetPrimaryKeyString();
        _nodes.Notify(node => node.OnEventAsync(key, visitorEvent));
        return Task.CompletedTask;
    }

    public Task VisitorActivityAsync(bool? typing, Guid? readUpTo)
    {
        _activity = _activity with
        {
            VisitorTypingUntil = typing is null ? _activity.VisitorTypingUntil : typing.Value ? _time.GetUtcNow() + TypingFor : null,
            VisitorReadUpTo = readUpTo ?? _activity.VisitorReadUpTo,
        };
        return Task.CompletedTask;
    }

    public Task AgentActivityAsync(bool? typing, Guid? readUpTo)
    {
        _activity = _activity with
        {
            AgentTypingUntil = typing is null ? _activity.AgentTypingUntil : typing.Value ? _time.GetUtcNow() + TypingFor : null,
            AgentReadUpTo = readUpTo ?? _activity.AgentReadUpTo,
        };
        if (typing is { } t)
            PublishAsync(new VisitorEvent(VisitorEventKind.Typing, Typing: t));
        if (readUpTo is { } upTo)
            PublishAsync(new VisitorEvent(VisitorEventKind.Read, ReadUpTo: upTo));
        return Task.CompletedTask;
    }

    public Task<bool> HasVisitorAsync()
    {
        _nodes.ClearExpired();
        return Task.FromResult(_nodes.Count > 0);
    }

    public Task<SessionActivity> GetActivityAsync()
    {
        var now = _time.GetUtcNow();
        return Task.FromResult(_activity with
        {
            VisitorTypingUntil = _activity.VisitorTypingUntil > now ? _activity.VisitorTypingUntil : null,
            AgentTypingUntil = _activity.AgentTypingUntil > now ? _activity.AgentTypingUntil : null,
        });
    }
}

/// <summary>
/// This node's end of the push path: one grain observer for the node, subscribed to the session grain of every
/// conversation that has a visitor connection here (and renewed at a third of the subscription's lifetime, so a
/// session grain that moved or was deactivated learns of the node again); events go to the local SignalR group.
/// </summary>
public sealed class VisitorPushNode(IGrainFactory grains, IHubContext<VisitorHub, IVisitorClient> hub, IOptions<WebChatOptions> options, ILogger<VisitorPushNode> logger)
    : BackgroundService, IVisitorNode
{
    private readonly ConcurrentDictionary<string, int> _local = new(StringComparer.Ordinal);
    // The local connections of each conversation and the token generation each connected with, to close them on a revoke.
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, (HubCallerContext Context, int Generation)>> _connections = new(StringComparer.Ordinal);
    private IVisitorNode? _self;

    /// <summary>This node as a grain observer (Orleans holds the object weakly; the DI container keeps it alive).</summary>
    private IVisitorNode Self => _self ??= grains.CreateObjectReference<IVisitorNode>(this);

    internal static string Group(string conversationKey) => "conversation:" + conversationKey;

    public Task AttachAsync(string conversationKey, HubCallerContext connection, int generation)
    {
        _connections.GetOrAdd(conversationKey, _ => new(StringComparer.Ordinal))[connection.ConnectionId] = (connection, generation);
        return AttachAsync(conversationKey);
    }

    public Task DetachAsync(string conversationKey, string connectionId)
    {
        if (_connections.TryGetValue(conversationKey, out var open))
        {
            open.TryRemove(connectionId, out _);
            if (open.IsEmpty)
                _connections.TryRemove(KeyValuePair.Create(conversationKey, open));
        }
        return DetachAsync(conversationKey);
    }

    public async Task AttachAsync(string conversationKey)
    {
        _local.AddOrUpdate(conversationKey, 1, (_, n) => n + 1);
        await grains.GetGrain<IWebChatSessionGrain>(conversationKey).SubscribeAsync(Self);
    }

    public async Task DetachAsync(string conversationKey)
    {
        var left = _local.AddOrUpdate(conversationKey, 0, (_, n) => Math.Max(0, n - 1));
        // Only the detach that removed the last local connection unsubscribes: when a new connection (a reload, a
        // second tab) attached in between, the count is above 0 again and the node must stay subscribed.
        if (left > 0 || !_local.TryRemove(KeyValuePair.Create(conversationKey, 0)))
            return;
        var session = grains.GetGrain<IWebChatSessionGrain>(conversationKey);
        try
        {
            await session.UnsubscribeAsync(Self);
        }
        catch (Exception ex)
        {
            // The subscription expires on its own.
            logger.LogDebug(ex, "Unsubscribing from {Conversation} failed", conversationKey);
        }
        // A connection that attached while the unsubscribe was on its way may have had its subscribe handled first:
        // subscribe again for it (subscribing is idempotent).
        if (_local.TryGetValue(conversationKey, out var now) && now > 0)
            await session.SubscribeAsync(Self);
    }

    public Task OnEventAsync(string conversationKey, VisitorEvent visitorEvent)
    {
        if (visitorEvent.Kind == VisitorEventKind.Ended)
        {
            // A revoked token must not keep receiving replies on a connection it opened before: close them (the
            // widget of the rightful visitor reconnects and is told what happened).
            if (_connections.TryGetValue(conversationKey, out var open))
                foreach (var (context, generation) in open.Values.Where(c => c.Generation < visitorEvent.EndedBelow))
                    context.Abort();
            return Task.CompletedTask;
        }
        var clients = hub.Clients.Group(Group(conversationKey));
        return visitorEvent.Kind switch
        {
            VisitorEventKind.Message when visitorEvent.Line is { } line => clients.Message(line),
            VisitorEventKind.Typing => clients.Typing(visitorEvent.Typing),
            VisitorEventKind.Read when visitorEvent.ReadUpTo is { } upTo => clients.Read(upTo),
            _ => Task.CompletedTask,
        };
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PushSubscriptionLifetime / 3);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            foreach (var key in _local.Where(p => p.Value > 0).Select(p => p.Key).ToList())
            {
                try
                {
                    await grains.GetGrain<IWebChatSessionGrain>(key).SubscribeAsync(Self);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "Renewing the push subscription of {Conversation} failed; retrying next round", key);
                }
            }
        }
    }
}
