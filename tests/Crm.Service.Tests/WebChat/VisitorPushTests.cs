using System.Reflection;
using Crm.Connectors.WebChat;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Crm.Service.Tests.WebChat;

/// <summary>The node's subscription to a conversation's pushes when a connection closes while another opens (a reload,
/// a second tab): the order in which the session grain handles the two calls is Orleans', not ours. The grain is a
/// recording stand-in here, because the point is an interleaving a real silo produces only by chance.</summary>
public sealed class VisitorPushTests
{
    [Fact]
    public async Task A_connection_that_opens_while_the_last_one_closes_keeps_the_node_subscribed()
    {
        var session = new RecordingSession();
        var node = new VisitorPushNode(GrainFactoryProxy.For(session), null!, Options.Create(new WebChatOptions()), NullLogger<VisitorPushNode>.Instance);
        const string key = "shop:0123456789abcdef0123456789abcdef";
        await node.AttachAsync(key);

        // The old tab closes: its unsubscribe is on its way (held) when the reloaded tab attaches and subscribes.
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        session.HoldUnsubscribe = hold;
        var detach = node.DetachAsync(key);
        await node.AttachAsync(key);
        hold.SetResult();
        await detach;

        Assert.True(session.Subscribed, "the node lost its subscription while a visitor is connected: pushes would be dropped");
        // And the last close still unsubscribes.
        await node.DetachAsync(key);
        Assert.False(session.Subscribed);
    }

    private sealed class RecordingSession : IWebChatSessionGrain
    {
        public bool Subscribed { get; private set; }

        public TaskCompletionSource? HoldUnsubscribe { get; set; }

        public Task SubscribeAsync(IVisitorNode node)
        {
            Subscribed = true;
            return Task.CompletedTask;
        }

        public async Task UnsubscribeAsync(IVisitorNode node)
        {
            if (HoldUnsubscribe is { } hold)
            {
                HoldUnsubscribe = null;
                await hold.Task;
            }
            Subscribed = false;
        }

        public Task PublishAsync(VisitorEvent visitorEvent) => Task.CompletedTask;

        public Task VisitorActivityAsync(bool? typing, Guid? readUpTo) => Task.CompletedTask;

        public Task AgentActivityAsync(bool? typing, Guid? readUpTo) => Task.CompletedTask;

        public Task<SessionActivity> GetActivityAsync() => throw new NotSupportedException();
        public Task<bool> HasVisitorAsync() => throw new NotSupportedException();
    }

    /// <summary>An IGrainFactory that hands out the one session grain and observer references that are the object itself.</summary>
    public class GrainFactoryProxy : DispatchProxy
    {
        private IWebChatSessionGrain _session = null!;

        internal static IGrainFactory For(IWebChatSessionGrain session)
        {
            var factory = Create<IGrainFactory, GrainFactoryProxy>();
            ((GrainFactoryProxy)(object)factory)._session = session;
            return factory;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) => targetMethod switch
        {
            { Name: "GetGrain" } when targetMethod.ReturnType == typeof(IWebChatSessionGrain) => _session,
            { Name: "CreateObjectReference" } => args![0],
            _ => throw new NotSupportedException(targetMethod?.Name),
        };
    }
}
