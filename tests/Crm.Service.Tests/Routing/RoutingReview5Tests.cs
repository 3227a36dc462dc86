using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

/// <summary>routing5: stored notices (RR4), the follow-up log in the console, routing admin pages (issue 20), and the
/// rest of routing4-review.md.</summary>
public sealed class RoutingReview5Tests
{
    private static async Task<Guid> RecordAsync(HttpClient client, Guid customer, object body)
    {
        var response = await client.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", body);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json)).GetProperty("id").GetGuid();
    }

    private static async Task<ConsoleBrowser> SignInAsync(CrmApp app, string email)
    {
        var browser = ConsoleBrowser.Open(app);
        Assert.Equal(HttpStatusCode.Redirect, (await browser.SubmitAsync("/Account/Login", new() { ["Email"] = email, ["Password"] = ConsoleBrowser.Password })).StatusCode);
        return browser;
    }

    private static Task<List<Infrastructure.Notifications.NoticeRecord>> NoticesAsync(CrmApp app) =>
        app.QueryAsync(db => db.Notices.AsNoTracking().OrderBy(n => n.Id).ToListAsync());

    // RR4: a notice was only a live push, so whoever was offline when the tick fired never saw it. Now it is stored per
    // person, once per cause, and listed on the Notices page with an unread count.
    [Fact]
    public async Task A_follow_up_notice_is_stored_once_and_an_agent_offline_when_it_fired_finds_it_on_the_notices_page()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock);
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        await ConsoleBrowser.CreateUserAsync(app, "carol@example.com", ConsoleRoles.Agent);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rr4-1", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var entry = await RecordAsync(alice, customer, new { how = "phone", nextDueAt = clock.GetUtcNow().AddHours(1), owner = "bob@example.com" });

        // Bob has no console open when it falls due; the tick repeats, and the notice is delivered again (a redelivery).
        clock.Advance(TimeSpan.FromHours(2));
        var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(entry);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        var stored = Assert.Single(await NoticesAsync(app));
        await app.Services.GetRequiredService<IFollowUpNotifier>().NotifyAsync(
            new FollowUpNotice("customer-follow-up-due", null, customer, ["bob@example.com"], NotifySupervisors: false, Cause: stored.Cause));
        Assert.Single(await NoticesAsync(app));
        Assert.Equal(("customer-follow-up-due", customer), (stored.Kind, stored.CustomerId));

        // Carol sees none of it and cannot mark Bob's notice read.
        using (var carol = await SignInAsync(app, "carol@example.com"))
        {
            Assert.DoesNotContain("data-notice=", await carol.PageAsync("/Notices"), StringComparison.Ordinal);
            await carol.SubmitAsync("/Notices", [], $"/Notices?handler=Read&id={stored.Id}");
            Assert.Null(Assert.Single(await NoticesAsync(app)).ReadAt);
        }

        // Bob signs in later: the bell counts it, the page lists it with a link to the customer, and he marks it read.
        using var bob = await SignInAsync(app, "bob@example.com");
        var page = await bob.PageAsync("/Notices");
        Assert.Contains("data-notice=\"customer-follow-up-due\" data-unread=\"true\"", page, StringComparison.Ordinal);
        Assert.Contains($"/Customers/{customer}", page, StringComparison.Ordinal);
        Assert.Contains("id=\"notice-bell\" title=\"Notices\">🔔<span class=\"count\">1</span>", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await bob.SubmitAsync("/Notices", [], $"/Notices?handler=Read&id={stored.Id}")).StatusCode);
        page = await bob.PageAsync("/Notices");
        Assert.Contains("data-unread=\"false\"", page, StringComparison.Ordinal);
        Assert.Contains("<span class=\"count\">0</span>", page, StringComparison.Ordinal);
    }

    // RR4: the milestone was marked before the notice was sent and a failed send was only logged, so the notice was
    // lost for good. Now the notice is stored first and a failure fails the tick, which comes again.
    [Fact]
    public async Task A_notice_that_could_not_be_stored_is_stored_by_the_next_tick()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, clock: clock, services: s => s.AddSingleton<IFollowUpNotifier>(sp =>
            new FailingOnceNotifier(ActivatorUtilities.CreateInstance<HubFollowUpNotifier>(sp))));
        await ConsoleBrowser.CreateUserAsync(app, "bob@example.com", ConsoleRoles.Agent);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var customer = (await scenario.ReceiveAsync(scenario.Message("rr4-2", GrainScenario.NewPhone(), "Call me"))).CustomerId;
        using var alice = await app.AgentAsync("alice");
        var entry = await RecordAsync(alice, customer, new { how = "phone", nextDueAt = clock.GetUtcNow().AddHours(1), owner = "bob@example.com" });

        clock.Advance(TimeSpan.FromHours(2));
        var grain = app.Grains.GetGrain<ICustomerFollowUpGrain>(entry);
        await Assert.ThrowsAnyAsync<Exception>(() => grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName));
        Assert.Null((await grain.GetAsync())!.RemindedAt);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        Assert.NotNull((await grain.GetAsync())!.RemindedAt);
        Assert.Equal("customer-follow-up-due", Assert.Single(await NoticesAsync(app)).Kind);
    }

    private sealed class FailingOnceNotifier(IFollowUpNotifier inner) : IFollowUpNotifier
    {
        private int _calls;

        public Task NotifyAsync(FollowUpNotice notice, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _calls) == 1 ? throw new IOException("the store is away") : inner.NotifyAsync(notice, cancellationToken);
    }
}
