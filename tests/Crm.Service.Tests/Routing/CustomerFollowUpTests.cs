using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Routing;

public sealed class CustomerFollowUpTests
{
    [Fact]
    public async Task A_follow_up_log_entry_reminds_the_owner_once_escalates_when_missed_after_a_restart_and_lists_as_due()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var notices = new FollowUpTests.RecordingFollowUpNotifier();
        var settings = new Dictionary<string, string?> { ["FollowUps:EscalateAfter"] = "04:00:00" };
        Guid customer, entryId;
        await using (var first = new CrmApp(data.Path, settings, clock, s => s.AddSingleton<IFollowUpNotifier>(notices)))
        {
            // A follow-up's team must exist (routing5, RR10).
            await first.Services.GetRequiredService<Crm.Service.Infrastructure.Teams.TeamDirectory>().SaveAsync("sales", "Sales", false, [], CancellationToken.None);
            var scenario = await new GrainScenario(first.Grains).CreateChannelAsync();
            var opened = await scenario.ReceiveAsync(scenario.Message("log-1", GrainScenario.NewPhone(), "Please call me about the contract"));
            customer = opened.CustomerId;
            using var agent = await first.AgentAsync("alice");
            var bad = await agent.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { outcome = "no channel" });
            Assert.Equal(HttpStatusCode.UnprocessableEntity, bad.StatusCode);
            var created = await agent.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new
            {
                how = "phone", outcome = "Interested; wants an offer", nextDueAt = clock.GetUtcNow().AddDays(2), owner = "bob@example.com", team = "sales", ticket = opened.TicketNumber,
            });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var entry = await created.Content.ReadFromJsonAsync<JsonElement>(CrmApp.Json);
            entryId = entry.GetProperty("id").GetGuid();
            Assert.Equal(("apikey:alice", "phone"), (entry.GetProperty("by").GetString(), entry.GetProperty("how").GetString()));
            var log = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/customers/{customer}/follow-ups");
            Assert.Equal(entryId, Assert.Single(log.GetProperty("items").EnumerateArray()).GetProperty("id").GetGuid());
            // Not due yet: nobody's due list has it.
            Assert.Empty((await agent.GetFromJsonAsync<JsonElement>("/api/v1/follow-ups/due?owner=bob@example.com")).GetProperty("items").EnumerateArray());
        }

        // The host is down when the follow-up falls due and comes back a day later: the durable reminder's first tick
        // tells the owner and, since it is missed by more than four hours, the supervisors; repeated ticks do nothing.
        clock.Advance(TimeSpan.FromDays(3));
        await using var second = new CrmApp(data.Path, settings, clock, s => s.AddSingleton<IFollowUpNotifier>(notices));
        var grain = second.Grains.GetGrain<ICustomerFollowUpGrain>(entryId);
        var grainId = grain.GetGrainId().ToString();
        Assert.Equal(1, await second.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders, r => r.GrainId == grainId)));
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        await grain.AsReference<IActivationProbe>().FireReminderAsync(CustomerFollowUpGrain.ReminderName);
        Assert.Equal(["customer-follow-up-due", "customer-follow-up-missed"], notices.Notices.Select(n => n.Kind));
        Assert.All(notices.Notices, n => Assert.Equal(["bob@example.com"], n.People));
        Assert.True(notices.Notices.Last().NotifySupervisors);
        Assert.Equal(0, await second.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Reminders, r => r.GrainId == grainId)));

        // Bob's own personal key (a system key is neither the owner nor the author, so it may not close the entry).
        await ConsoleBrowser.CreateUserAsync(second, "bob@example.com", ConsoleRoles.Agent);
        string bobId;
        using (var scope = second.Services.CreateScope())
            bobId = (await scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Microsoft.AspNetCore.Identity.IdentityUser>>()
                .FindByEmailAsync("bob@example.com"))!.Id;
        using var bob = second.CreateClient();
        bob.DefaultRequestHeaders.Add("X-Api-Key", (await second.Services.GetRequiredService<Crm.Service.Auth.ApiKeyDirectory>()
            .CreateAsync("bob@example.com/laptop", Crm.Service.Auth.Roles.Agent, ownerId: bobId)).Key);
        var due = await bob.GetFromJsonAsync<JsonElement>("/api/v1/follow-ups/due?owner=bob@example.com");
        Assert.Equal(entryId, Assert.Single(due.GetProperty("items").EnumerateArray()).GetProperty("id").GetGuid());
        Assert.Single((await bob.GetFromJsonAsync<JsonElement>("/api/v1/follow-ups/due?team=sales")).GetProperty("items").EnumerateArray());
        Assert.Empty((await bob.GetFromJsonAsync<JsonElement>("/api/v1/follow-ups/due?team=support")).GetProperty("items").EnumerateArray());

        // Bob calls: the new entry is the follow-up the first asked for, so the first leaves the due lists.
        (await bob.PostAsJsonAsync($"/api/v1/customers/{customer}/follow-ups", new { how = "email", outcome = "Offer sent" })).EnsureSuccessStatusCode();
        Assert.Empty((await bob.GetFromJsonAsync<JsonElement>("/api/v1/follow-ups/due?owner=bob@example.com")).GetProperty("items").EnumerateArray());
        Assert.NotNull((await grain.GetAsync())!.DoneAt);
        Assert.Equal(2, (await bob.GetFromJsonAsync<JsonElement>($"/api/v1/customers/{customer}/follow-ups")).GetProperty("items").GetArrayLength());
    }
}
