using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class RoutingAndMergeSafetyTests(TestClusterFixture fixture)
{
    private const string Agent = "agent:ann";

    [Fact]
    public async Task A_conversation_pointing_at_another_customers_ticket_opens_its_own_ticket_instead_of_joining()
    {
        // The state a crash left behind before the fix: conversation A reserved a number and stored it, the ticket
        // was never opened, the number was handed out again and is now customer B's ticket.
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var alice = GrainScenario.NewPhone();
        var bob = GrainScenario.NewPhone();
        var aliceFirst = await scenario.ReceiveAsync(scenario.Message("a-1", alice, thread: "alice-1"));
        var bobs = await scenario.ReceiveAsync(scenario.Message("b-1", bob, "My card number is …"));
        var orphanKey = GrainKeys.Conversation(scenario.Channel, "alice-2");
        await fixture.SiloServices.GetRequiredService<ICrmStore>().CommitAsync(new WriteSet().Insert(new ConversationRecord
        {
            Id = Guid.NewGuid(),
            Key = orphanKey,
            ChannelAccountId = scenario.Channel,
            Channel = ChannelKind.Api,
            ThreadKey = "alice-2",
            CustomerId = aliceFirst.CustomerId,
            CustomerIdentity = GrainKeys.Identity(IdentityKind.Phone, alice, scenario.Channel),
            TicketNumber = bobs.TicketNumber,
            CreatedAt = DateTimeOffset.UtcNow,
        }));

        var alices = await scenario.ReceiveAsync(scenario.Message("a-2", alice, "Where is my order?", thread: "alice-2"));

        Assert.NotEqual(bobs.TicketNumber, alices.TicketNumber);
        var bobsTicket = await fixture.Grains.GetGrain<ITicketGrain>(bobs.TicketNumber).GetAsync();
        Assert.Equal([bobs.ConversationId], bobsTicket!.ConversationIds);
        var alicesTicket = await fixture.Grains.GetGrain<ITicketGrain>(alices.TicketNumber).GetAsync();
        Assert.Equal(aliceFirst.CustomerId, alicesTicket!.CustomerId);
        var number = bobs.TicketNumber;
        Assert.Equal(["b-1"], await fixture.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == number).Select(m => m.ExternalId!).ToListAsync()));
        // The conversation now points at its own ticket, so its next message goes there too.
        var next = await scenario.ReceiveAsync(scenario.Message("a-3", alice, "Hello?", thread: "alice-2"));
        Assert.Equal(alices.TicketNumber, next.TicketNumber);
    }

    [Fact]
    public async Task Opposite_ticket_merges_at_once_do_not_wait_on_each_other_and_leave_no_cycle()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var a = await scenario.ReceiveAsync(scenario.Message("m-a", phone, thread: "ta"));
        var b = await scenario.ReceiveAsync(scenario.Message("m-b", phone, thread: "tb"));
        var coordinator = fixture.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets);

        var outcomes = await Task.WhenAll(
            Outcome(coordinator.MergeTicketsAsync(a.TicketNumber, b.TicketNumber, Agent)),
            Outcome(coordinator.MergeTicketsAsync(b.TicketNumber, a.TicketNumber, Agent)));

        // One merge wins; the other is refused as a conflict (not a timeout of two grains waiting on each other).
        Assert.Single(outcomes, o => o is null);
        var refusal = Assert.IsType<DomainException>(Assert.Single(outcomes, o => o is not null));
        Assert.Equal(DomainErrorKind.Conflict, refusal.Kind);
        var ta = await fixture.Grains.GetGrain<ITicketGrain>(a.TicketNumber).GetAsync();
        var tb = await fixture.Grains.GetGrain<ITicketGrain>(b.TicketNumber).GetAsync();
        Assert.True(ta!.MergedInto is null ^ tb!.MergedInto is null, "exactly one ticket is merged");
    }

    [Fact]
    public async Task Opposite_customer_merges_at_once_do_not_wait_on_each_other()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var x = await scenario.ReceiveAsync(scenario.Message("c-x", GrainScenario.NewPhone()));
        var y = await scenario.ReceiveAsync(scenario.Message("c-y", GrainScenario.NewPhone()));
        var coordinator = fixture.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers);

        var outcomes = await Task.WhenAll(
            Outcome(coordinator.MergeCustomersAsync(x.CustomerId, y.CustomerId, Agent)),
            Outcome(coordinator.MergeCustomersAsync(y.CustomerId, x.CustomerId, Agent)));

        Assert.Single(outcomes, o => o is null);
        Assert.Equal(DomainErrorKind.Conflict, Assert.IsType<DomainException>(Assert.Single(outcomes, o => o is not null)).Kind);
        var cx = await fixture.Grains.GetGrain<ICustomerGrain>(x.CustomerId).GetAsync();
        var cy = await fixture.Grains.GetGrain<ICustomerGrain>(y.CustomerId).GetAsync();
        Assert.True(cx!.MergedInto is null ^ cy!.MergedInto is null, "exactly one customer is merged");
    }

    [Fact]
    public async Task An_agent_reply_is_stored_with_the_same_html_policy_as_inbound_mail()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var ticket = await scenario.ReceiveAsync(scenario.Message("h-1", GrainScenario.NewPhone()));

        var reply = await fixture.Grains.GetGrain<ITicketGrain>(ticket.TicketNumber).ReplyAsync(new AgentReply
        {
            Actor = Agent,
            Text = "See below",
            Html = "<p onclick=\"steal()\">Hi</p><script>alert(1)</script><form action=\"https://evil.example\"><input name=\"password\"></form>"
                + "<div style=\"background:url(https://tracker.example/p.gif)\">x</div><img src=\"https://tracker.example/open.gif\">",
        });

        var id = reply.Id;
        var stored = await fixture.QueryAsync(db => db.Messages.SingleAsync(m => m.Id == id));
        Assert.Contains("Hi", stored.Html, StringComparison.Ordinal);
        foreach (var banned in new[] { "onclick", "<script", "<form", "<input", "url(", " src=\"https://tracker" })
            Assert.DoesNotContain(banned, stored.Html, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Another_sender_on_a_thread_key_cannot_write_into_that_conversation()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var alice = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("s-1", alice, "my address is …", thread: "room-1"));

        var intruder = await Assert.ThrowsAsync<DomainException>(() => scenario.ReceiveAsync(scenario.Message("s-2", GrainScenario.NewPhone(), "what did she say?", thread: "room-1")));

        Assert.Equal(("threadKey", DomainErrorKind.Conflict), (intruder.Field, intruder.Kind));
        var number = first.TicketNumber;
        Assert.Equal(["s-1"], await fixture.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == number).Select(m => m.ExternalId!).ToListAsync()));
    }

    [Fact]
    public async Task A_conversation_follows_a_chain_of_merges_longer_than_it_can_hop()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var tickets = new List<long>();
        for (var i = 0; i < 18; i++)
            tickets.Add((await scenario.ReceiveAsync(scenario.Message($"chain-{i}", phone, thread: $"chain-{i}"))).TicketNumber);
        var coordinator = fixture.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets);
        for (var i = 0; i < 17; i++)
            await coordinator.MergeTicketsAsync(tickets[i], tickets[i + 1], Agent);

        // The first conversation's activation still points at the first ticket: 17 hops away from the last one.
        var next = await scenario.ReceiveAsync(scenario.Message("chain-next", phone, thread: "chain-0"));

        Assert.Equal(tickets[^1], next.TicketNumber);
    }

    [Fact]
    public async Task A_channels_health_report_is_not_a_change_of_the_channel()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var channel = scenario.Channel;
        var before = await fixture.QueryAsync(db => db.Changes.CountAsync(c => c.Entity == "channel" && c.EntityId == channel));

        var account = fixture.Grains.GetGrain<IChannelAccountGrain>(channel);
        await account.ReportHealthAsync(new ChannelHealthReport(DateTimeOffset.UtcNow));
        await account.ReportHealthAsync(new ChannelHealthReport(DateTimeOffset.UtcNow.AddSeconds(1), "503 Service Unavailable"));

        Assert.Equal("503 Service Unavailable", (await account.GetAsync())!.LastError);
        Assert.Equal(before, await fixture.QueryAsync(db => db.Changes.CountAsync(c => c.Entity == "channel" && c.EntityId == channel)));
    }

    private static async Task<Exception?> Outcome(Task task)
    {
        try
        {
            await task;
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }
}
