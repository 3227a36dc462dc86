using System.Net;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Console;

/// <summary>routing6 in headless chromium: an admin walks the routing rule form, and the bell counts a new notice live.</summary>
public sealed class RoutingConsoleBrowserTests : BrowserTest
{


    private async Task<IPage> SignedInPageAsync(string email, params string[] roles)
    {
        await ConsoleBrowser.CreateUserAsync(App, email, roles);
        return await base.SignedInPageAsync(email);
    }

    [Fact]
    public async Task An_admin_creates_a_routing_rule_in_the_form_sees_the_refusal_at_the_team_field_and_then_the_rule_listed()
    {
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("billing", "Billing", false, [], CancellationToken.None);
        var page = await SignedInPageAsync("admin@example.com", ConsoleRoles.Admin, ConsoleRoles.Agent);
        await page.GotoAsync(BaseUrl + "/Admin/Routing/Rules");
        await page.Locator("#Rule_Id").FillAsync("refunds");
        await page.Locator("#Rule_Name").FillAsync("Refunds to billing");
        await page.Locator("#Rule_Conditions_Keywords").FillAsync("refund");
        await page.Locator("#Rule_Team").FillAsync("biling");
        await page.Locator("#rule-form button[type=submit]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-valmsg-for='Rule.Team']")).ToContainTextAsync("No team 'biling'");
        // The form keeps what was typed; fixing the one field saves the rule.
        await Assertions.Expect(page.Locator("#Rule_Conditions_Keywords")).ToHaveValueAsync("refund");
        await page.Locator("#Rule_Team").FillAsync("billing");
        await page.Locator("#rule-form button[type=submit]").ClickAsync();
        await Assertions.Expect(page.Locator("#routing-settings tr[data-id='refunds']")).ToContainTextAsync("Refunds to billing");
    }

    [Fact]
    public async Task The_bell_counts_a_new_stored_notice_without_a_reload()
    {
        var page = await SignedInPageAsync("agent@example.com", ConsoleRoles.Agent);
        await page.GotoAsync(BaseUrl + "/Queues");
        await page.Locator("#live-status[data-state='online']").WaitForAsync(new() { State = WaitForSelectorState.Attached });
        var bell = page.Locator("#notice-bell .count");
        await Assertions.Expect(bell).ToHaveTextAsync("0");

        var notifier = App.Services.GetRequiredService<IFollowUpNotifier>();
        await notifier.NotifyAsync(new FollowUpNotice("customer-follow-up-due", null, Guid.NewGuid(), ["agent@example.com"], false, null, Cause: "routing6-bell-1"));
        await Assertions.Expect(bell).ToHaveTextAsync("1");
        // A repeated cause stores nothing and pushes nothing; a new one counts.
        await notifier.NotifyAsync(new FollowUpNotice("customer-follow-up-due", null, Guid.NewGuid(), ["agent@example.com"], false, null, Cause: "routing6-bell-1"));
        await notifier.NotifyAsync(new FollowUpNotice("customer-follow-up-missed", null, Guid.NewGuid(), ["agent@example.com"], false, null, Cause: "routing6-bell-2"));
        await Assertions.Expect(bell).ToHaveTextAsync("2");
    }
}
