using System.Globalization;
using System.Net.Http.Json;
using Crm.Service.Contracts;
using Crm.Service.Grains.Routing;
using Crm.Service.Grains.Sla;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

/// <summary>Fixes of the second cold review (N1-N10 in routing2-console3-review.md), each with the test that failed before.</summary>
public sealed class RoutingReview2FixTests
{
    private static string Id(long number) => number.ToString(CultureInfo.InvariantCulture);

    private static Change Created(long sequence, long ticket, DateTimeOffset at) => new(sequence, ChangeEntities.Ticket, Id(ticket), ChangeKinds.Created, at);

    /// <summary>The change feed's dispatcher does not run: the test hands the consumers their batches itself, in the
    /// order the scenario needs (a feed that is behind).</summary>
    internal static void WithoutFeed(IServiceCollection services)
    {
        var prefix = typeof(Crm.Service.Infrastructure.Changes.ChangeFeedExtensions).FullName!;
        foreach (var hosted in services.Where(d => d.ServiceType == typeof(Microsoft.Extensions.Hosting.IHostedService)
            && d.ImplementationFactory?.Method.DeclaringType?.FullName?.StartsWith(prefix, StringComparison.Ordinal) == true).ToList())
            services.Remove(hosted);
    }

    private static IChangeConsumer Consumer(CrmApp app, string name) => app.Services.GetServices<IChangeConsumer>().Single(c => c.Name == name);

    private static async Task PolicyAsync(HttpClient admin) =>
        (await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/standard", new
        {
            name = "Standard",
            targets = new[] { new { priority = "normal", resolution = "08:00:00" }, new { priority = "high", resolution = "04:00:00" } },
        })).EnsureSuccessStatusCode();

    // N1: a new ticket merged before routing (or one that cannot take the rule's tags) failed the "sla" and
    // "assignment" consumers' batch on every retry, so no other ticket got clocks or an agent.
    [Fact]
    public async Task A_merged_or_overtagged_new_ticket_does_not_stop_routing_sla_or_assignment_of_the_others()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock, services: WithoutFeed);
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/billing", new { name = "Billing" })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/all", new { name = "All to billing", team = "billing", addTags = new[] { "routed" } })).EnsureSuccessStatusCode();
        await PolicyAsync(admin);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        async Task<long> OpenAsync(string id) => (await scenario.ReceiveAsync(scenario.Message(id, GrainScenario.NewPhone()))).TicketNumber;
        // The customer writes twice, in two threads.
        var phone = GrainScenario.NewPhone();
        var duplicate = (await scenario.ReceiveAsync(scenario.Message("n1-dup", phone, thread: "thread-2"))).TicketNumber;
        var original = (await scenario.ReceiveAsync(scenario.Message("n1-orig", phone, thread: "thread-1"))).TicketNumber;
        var tagged = await OpenAsync("n1-tags");
        var healthy = await OpenAsync("n1-ok");
        // The agent merges the fresh duplicate before the consumers saw its "created" change (a feed that is behind).
        await app.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets).MergeTicketsAsync(duplicate, original, "agent");
        // Another ticket already has the most tags allowed: the rule's tag does not fit, its team still does.
        await app.Grains.GetGrain<ITicketGrain>(tagged).ChangeAsync(new TicketChange { Tags = [.. Enumerable.Range(0, Crm.Service.Grains.InputLimits.MaxTagsPerEntity).Select(i => $"t{i}")] }, "agent");

        var at = clock.GetUtcNow();
        IReadOnlyList<Change> batch = [Created(1, duplicate, at), Created(2, tagged, at), Created(3, healthy, at)];
        await Consumer(app, "sla").HandleAsync(batch, CancellationToken.None);
        await Consumer(app, "assignment").HandleAsync(batch, CancellationToken.None);

        Assert.NotEmpty((await app.Grains.GetGrain<ISlaClockGrain>(healthy).GetAsync()).Clocks);
        Assert.Equal("billing", (await app.Grains.GetGrain<ITicketGrain>(healthy).GetAsync())!.Team);
        var merged = (await app.Grains.GetGrain<ITicketRoutingGrain>(duplicate).RouteAsync())!;
        Assert.True(merged.Applied);
        Assert.Contains("merged", merged.Outcome);
        var overTagged = (await app.Grains.GetGrain<ITicketRoutingGrain>(tagged).RouteAsync())!;
        Assert.Contains("tags refused", overTagged.Outcome);
        var taggedTicket = (await app.Grains.GetGrain<ITicketGrain>(tagged).GetAsync())!;
        Assert.Equal("billing", taggedTicket.Team);
        Assert.DoesNotContain("routed", taggedTicket.Tags);
        Assert.NotEmpty((await app.Grains.GetGrain<ISlaClockGrain>(tagged).GetAsync()).Clocks);
    }

    /// <summary>Runs a step of the test between routing's decision (stored) and its change to the ticket.</summary>
    internal sealed class InterceptingRoutingStore(IRoutingStore inner) : IRoutingStore
    {
        public Func<string, string, Task>? AfterPut { get; set; }
        /// <summary>Runs before the write; throwing here is a crash before the document is stored.</summary>
        public Func<string, string, Task>? BeforePut { get; set; }

        public Task<string?> GetAsync(string kind, string id, CancellationToken cancellationToken = default) => inner.GetAsync(kind, id, cancellationToken);
        public Task<IReadOnlyList<string>> ListAsync(string kind, CancellationToken cancellationToken = default) => inner.ListAsync(kind, cancellationToken);
        public async Task PutAsync(string kind, string id, string json, CancellationToken cancellationToken = default)
        {
            if (BeforePut is { } before)
                await before(kind, id);
            await inner.PutAsync(kind, id, json, cancellationToken);
            if (AfterPut is { } hook)
                await hook(kind, id);
        }
        public Task<bool> DeleteAsync(string kind, string id, CancellationToken cancellationToken = default) => inner.DeleteAsync(kind, id, cancellationToken);
        public Task<IReadOnlyList<string>> CustomerFollowUpsAsync(Guid customer, bool openOnly, string? afterAt, string? afterId, int take, CancellationToken cancellationToken = default) =>
            inner.CustomerFollowUpsAsync(customer, openOnly, afterAt, afterId, take, cancellationToken);
        public Task<IReadOnlyList<string>> DueFollowUpsAsync(DateTimeOffset by, string? owner, string? team, string? afterDue, string? afterId, int take, CancellationToken cancellationToken = default, string? ownerId = null,
            IReadOnlyCollection<string>? ownerNames = null) =>
            inner.DueFollowUpsAsync(by, owner, team, afterDue, afterId, take, cancellationToken, ownerId, ownerNames);
        public Task<string?> FirstCustomerTextAsync(long ticketNumber, CancellationToken cancellationToken = default) => inner.FirstCustomerTextAsync(ticketNumber, cancellationToken);
    }

    internal static void InterceptRoutingStore(IServiceCollection services)
    {
        var original = services.Last(d => d.ServiceType == typeof(IRoutingStore));
        services.Remove(original);
        services.AddSingleton(sp => new InterceptingRoutingStore((IRoutingStore)ActivatorUtilities.CreateInstance(sp, original.ImplementationType!)));
        services.AddSingleton<IRoutingStore>(sp => sp.GetRequiredService<InterceptingRoutingStore>());
    }

    // N4: routing wrote back the whole tag list it had read before its decision was stored, dropping a tag added
    // meanwhile, and a retry put its priority over an agent's newer choice.
    [Fact]
    public async Task Routing_adds_its_tags_to_those_added_meanwhile_and_a_retry_keeps_a_newer_priority()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock, services: s => { WithoutFeed(s); InterceptRoutingStore(s); });
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/tagger", new { name = "Tagger", priority = "low", addTags = new[] { "routed" } })).EnsureSuccessStatusCode();
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var ticket = (await scenario.ReceiveAsync(scenario.Message("n4-1", GrainScenario.NewPhone()))).TicketNumber;
        var ticketGrain = app.Grains.GetGrain<ITicketGrain>(ticket);
        var interceptor = app.Services.GetRequiredService<InterceptingRoutingStore>();
        interceptor.AfterPut = async (kind, id) =>
        {
            if (kind != RoutingKinds.TicketRouting || id != Id(ticket))
                return;
            interceptor.AfterPut = null;
            // An integration reacting to the ticket-created webhook tags the ticket while routing runs.
            await ticketGrain.ChangeAsync(new TicketChange { AddTags = ["vip"] }, "integration");
        };
        await app.Grains.GetGrain<ITicketRoutingGrain>(ticket).RouteAsync();
        var routed = (await ticketGrain.GetAsync())!;
        Assert.Equal(["routed", "vip"], routed.Tags.Order());
        Assert.Equal(TicketPriority.Low, routed.Priority);

        // A crash after the decision was stored and before it reached the ticket; meanwhile an agent set the priority
        // and removed a tag. The retry adds only the rule's tags and leaves the agent's priority.
        var second = (await scenario.ReceiveAsync(scenario.Message("n4-2", GrainScenario.NewPhone()))).TicketNumber;
        var secondGrain = app.Grains.GetGrain<ITicketGrain>(second);
        await secondGrain.ChangeAsync(new TicketChange { AddTags = ["spam"] }, "agent");
        interceptor.AfterPut = (kind, id) =>
        {
            if (kind == RoutingKinds.TicketRouting && id == Id(second))
            {
                interceptor.AfterPut = null;
                throw new IOException("killed after the decision was stored");
            }
            return Task.CompletedTask;
        };
        await Assert.ThrowsAsync<IOException>(() => app.Grains.GetGrain<ITicketRoutingGrain>(second).RouteAsync());
        await secondGrain.ChangeAsync(new TicketChange { Priority = TicketPriority.Urgent, RemoveTags = ["spam"], AddTags = ["checked"] }, "agent");
        var retried = (await app.Grains.GetGrain<ITicketRoutingGrain>(second).RouteAsync())!;
        Assert.True(retried.Applied);
        var after = (await secondGrain.GetAsync())!;
        Assert.Equal(TicketPriority.Urgent, after.Priority);
        Assert.Equal(["checked", "routed"], after.Tags.Order());
    }

    // N5: a keyword rule threw "not ready" for a ticket whose first message was not stored yet, failing the whole batch
    // of both consumers (and a split agent reply never gets an inbound message, so for a minute every retry failed).
    [Fact]
    public async Task A_ticket_waiting_for_its_first_message_does_not_hold_up_the_batch_and_is_routed_when_the_wait_ends()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock, services: WithoutFeed);
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/teams/billing", new { name = "Billing" })).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/admin/routing-rules/refunds", new
        {
            name = "Refunds", conditions = new { keywords = new[] { "refund" } }, team = "billing", priority = "high",
        })).EnsureSuccessStatusCode();
        await PolicyAsync(admin);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("n5-1", GrainScenario.NewPhone(), "Where is my refund?"));
        // An agent splits their own reply into a ticket of its own: it has a conversation but no customer message.
        var reply = await app.Grains.GetGrain<ITicketGrain>(first.TicketNumber).ReplyAsync(new AgentReply { Actor = "agent", Text = "About the refund: see below" });
        var split = (await app.Grains.GetGrain<ITicketGrain>(first.TicketNumber).SplitAsync(reply.Id, "agent")).Number;
        var healthy = (await scenario.ReceiveAsync(scenario.Message("n5-2", GrainScenario.NewPhone(), "I want a refund"))).TicketNumber;

        var at = clock.GetUtcNow();
        IReadOnlyList<Change> batch = [Created(1, split, at), Created(2, healthy, at)];
        await Consumer(app, "sla").HandleAsync(batch, CancellationToken.None);
        await Consumer(app, "assignment").HandleAsync(batch, CancellationToken.None);
        Assert.Equal(("billing", TicketPriority.High), ((await app.Grains.GetGrain<ITicketGrain>(healthy).GetAsync())!.Team, (await app.Grains.GetGrain<ITicketGrain>(healthy).GetAsync())!.Priority));
        Assert.NotEmpty((await app.Grains.GetGrain<ISlaClockGrain>(healthy).GetAsync()).Clocks);
        var routing = app.Grains.GetGrain<ITicketRoutingGrain>(split);
        Assert.True((await routing.RouteAsync())!.Waiting);
        Assert.Empty((await app.Grains.GetGrain<ISlaClockGrain>(split).GetAsync()).Clocks);
        var grainId = routing.GetGrainId().ToString();
        Assert.Equal(1, await app.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders, r => r.GrainId == grainId && r.Name == TicketRoutingGrain.ReminderName)));

        // The wait ends (the durable reminder ticks): the ticket is routed on what it has and reaches its SLA clock.
        clock.Advance(TicketRoutingGrain.FirstMessageWait + TimeSpan.FromSeconds(1));
        await routing.AsReference<IActivationProbe>().FireReminderAsync(TicketRoutingGrain.ReminderName);
        var decided = (await routing.RouteAsync())!;
        Assert.Equal((false, true), (decided.Waiting, decided.Applied));
        Assert.NotEmpty((await app.Grains.GetGrain<ISlaClockGrain>(split).GetAsync()).Clocks);
        Assert.Equal(0, await app.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders, r => r.GrainId == grainId && r.Name == TicketRoutingGrain.ReminderName)));
    }

    private static Task FireFollowUpAsync(CrmApp app, long ticket) =>
        app.Grains.GetGrain<Crm.Service.Contracts.ITicketFollowUpGrain>(ticket).AsReference<IActivationProbe>().FireReminderAsync(Crm.Service.Grains.FollowUps.TicketFollowUpGrain.ReminderName);

    // N3: the follow-up was stored before its reminder was registered, so a crash in between left it waiting for a
    // tick that never came. N6: a crash between the reopen and the "fired" mark reopened the ticket a second time.
    // N8: a follow-up of a ticket merged since acted on nothing.
    [Fact]
    public async Task A_follow_up_has_its_reminder_before_it_is_stored_reopens_once_and_follows_a_merge()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var notices = new FollowUpTests.RecordingFollowUpNotifier();
        await using var app = new CrmApp(data.Path, clock: clock, services: s =>
        {
            WithoutFeed(s);
            InterceptRoutingStore(s);
            s.AddSingleton<Crm.Service.Grains.FollowUps.IFollowUpNotifier>(notices);
        });
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var ticket = (await scenario.ReceiveAsync(scenario.Message("n3-1", GrainScenario.NewPhone()))).TicketNumber;
        var ticketGrain = app.Grains.GetGrain<ITicketGrain>(ticket);
        await ticketGrain.ChangeAsync(new TicketChange { Status = TicketStatus.Pending, Assignee = "agent-7" }, "agent-7");
        var followUp = app.Grains.GetGrain<ITicketFollowUpGrain>(ticket);
        var interceptor = app.Services.GetRequiredService<InterceptingRoutingStore>();
        interceptor.AfterPut = (kind, _) =>
        {
            if (kind != RoutingKinds.TicketFollowUp)
                return Task.CompletedTask;
            interceptor.AfterPut = null;
            throw new IOException("killed after the follow-up was stored");
        };
        await Assert.ThrowsAsync<IOException>(() => followUp.SetAsync(clock.GetUtcNow().AddHours(1), "agent-7", "call back"));
        var grainId = followUp.GetGrainId().ToString();
        Assert.Equal(1, await app.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders,
            r => r.GrainId == grainId && r.Name == Crm.Service.Grains.FollowUps.TicketFollowUpGrain.ReminderName)));

        // Due: the tick reopens the ticket, then the host dies before the follow-up is marked fired.
        clock.Advance(TimeSpan.FromHours(2));
        interceptor.AfterPut = (kind, _) =>
        {
            if (kind != RoutingKinds.TicketFollowUp)
                return Task.CompletedTask;
            interceptor.AfterPut = null;
            throw new IOException("killed after the follow-up was marked fired");
        };
        await Assert.ThrowsAsync<IOException>(() => FireFollowUpAsync(app, ticket));
        Assert.Equal(TicketStatus.Open, (await ticketGrain.GetAsync())!.Status);
        // The agent sets it pending again (waiting on the customer); the repeated tick must not reopen it.
        await ticketGrain.ChangeAsync(new TicketChange { Status = TicketStatus.Pending }, "agent-7");
        await FireFollowUpAsync(app, ticket);
        Assert.Equal(TicketStatus.Pending, (await ticketGrain.GetAsync())!.Status);

        // A follow-up on a ticket that is merged before it is due reopens and names the ticket it went into.
        var phone = GrainScenario.NewPhone();
        var source = (await scenario.ReceiveAsync(scenario.Message("n8-1", phone, thread: "n8-a"))).TicketNumber;
        var target = (await scenario.ReceiveAsync(scenario.Message("n8-2", phone, thread: "n8-b"))).TicketNumber;
        await app.Grains.GetGrain<ITicketGrain>(source).ChangeAsync(new TicketChange { Status = TicketStatus.Pending }, "agent-7");
        await app.Grains.GetGrain<ITicketGrain>(target).ChangeAsync(new TicketChange { Status = TicketStatus.Pending }, "agent-7");
        await app.Grains.GetGrain<ITicketFollowUpGrain>(source).SetAsync(clock.GetUtcNow().AddHours(1), "agent-7", null);
        await app.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets).MergeTicketsAsync(source, target, "agent-7");
        notices.Notices.Clear();
        clock.Advance(TimeSpan.FromHours(2));
        await FireFollowUpAsync(app, source);
        Assert.Equal(TicketStatus.Open, (await app.Grains.GetGrain<ITicketGrain>(target).GetAsync())!.Status);
        Assert.Equal(target, Assert.Single(notices.Notices).Ticket);
    }
}
