using Crm.Service.AgentConsole;
using Crm.Service.Contracts;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Notifications;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crm.Service.Tests.Console;

/// <summary>CR7: the bell push after a stored notice is per person. One recipient whose push fails (their connection's
/// send throws) must not keep the next recipients' bells from counting the notice (an escalation goes to every
/// supervisor). The notices are real rows in the app's SQLite store; only the hub's sending is a recording stand-in.</summary>
public sealed class LivePushPerPersonTests
{
    [Fact]
    public async Task A_recipient_whose_bell_push_throws_does_not_keep_the_next_ones_from_getting_theirs()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var notices = app.Services.GetRequiredService<NoticeStore>();
        var hub = new RecordingHub(failing: "sup-1");
        var fresh = await notices.StoreAsync(["sup-1", "sup-2", "sup-3"], "sla-breach:7:1", "sla-breach-resolution", 7, null, "sla");
        Assert.Equal(["sup-1", "sup-2", "sup-3"], fresh);

        await LivePush.SendAsync(hub, notices, fresh, new AgentNotification("sla-breach-resolution", 7, "sla", null), NullLogger.Instance);

        Assert.Equal(["sup-2:1", "sup-3:1"], hub.Bells);
        Assert.Equal(1, hub.Failures);
    }

    /// <summary>Records each person's bell push; <c>failing</c>'s throws as a broken connection's would.</summary>
    private sealed class RecordingHub(string failing) : IHubContext<AgentHub, IAgentClient>, IHubClients<IAgentClient>
    {
        public string FailingPerson => failing;
        public List<string> Bells { get; } = [];
        public int Failures { get; private set; }

        IHubClients<IAgentClient> IHubContext<AgentHub, IAgentClient>.Clients => this;
        IGroupManager IHubContext<AgentHub, IAgentClient>.Groups => throw new NotSupportedException();

        public IAgentClient User(string userId) => new Proxy(this, userId);
        public IAgentClient Users(IReadOnlyList<string> userIds) => new Proxy(this, null);
        public IAgentClient All => throw new NotSupportedException();
        public IAgentClient AllExcept(IReadOnlyList<string> excludedConnectionIds) => throw new NotSupportedException();
        public IAgentClient Client(string connectionId) => throw new NotSupportedException();
        IAgentClient IHubClients<IAgentClient>.Clients(IReadOnlyList<string> connectionIds) => throw new NotSupportedException();
        public IAgentClient Group(string groupName) => throw new NotSupportedException();
        public IAgentClient GroupExcept(string groupName, IReadOnlyList<string> excludedConnectionIds) => throw new NotSupportedException();
        IAgentClient IHubClients<IAgentClient>.Groups(IReadOnlyList<string> groupNames) => throw new NotSupportedException();

        private sealed class Proxy(RecordingHub hub, string? person) : IAgentClient
        {
            public Task NoticesChanged(int unread)
            {
                if (person == hub.FailingPerson)
                {
                    hub.Failures++;
                    throw new IOException($"The connection of {person} is gone.");
                }
                hub.Bells.Add($"{person}:{unread}");
                return Task.CompletedTask;
            }

            public Task Notify(AgentNotification notification) => Task.CompletedTask;
            public Task QueuesChanged(IReadOnlyList<long> tickets) => throw new NotSupportedException();
            public Task TicketChanged(long number) => throw new NotSupportedException();
            public Task Resync() => throw new NotSupportedException();
            public Task Viewers(long number, IReadOnlyList<TicketViewers.ViewerView> viewers) => throw new NotSupportedException();
            public Task PresenceChanged(PresenceView presence) => throw new NotSupportedException();
        }
    }
}
