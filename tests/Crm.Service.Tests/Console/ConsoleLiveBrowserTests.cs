using System.Net;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Console;

/// <summary>Review CR1 and CR7 in headless chromium: what one page does shows in another open page without a reload.</summary>
public sealed class ConsoleLiveBrowserTests : BrowserTest
{
    private const string Agent = "agent@example.com";
    protected override async Task SetUpAsync()
    {
        await ConsoleBrowser.CreateUserAsync(App, Agent, ConsoleRoles.Agent);
    }

    /// <summary>A page of its own (its own browser context), signed in as the agent and live on <paramref name="path"/>.</summary>
    private async Task<IPage> LivePageAsync(string path)
    {
        var page = await SignedInPageAsync(Agent);
        await page.GotoAsync(BaseUrl + path);
        await page.Locator("#live-status[data-state='online']").WaitForAsync(new() { State = WaitForSelectorState.Attached });
        return page;
    }

    [Fact]
    public async Task A_link_made_on_one_ticket_shows_in_the_other_tickets_open_links_panel_without_a_reload()
    {
        await App.CreateApiChannelAsync();
        var (a, _) = await App.ReceiveAsync("cr1-a", "cr1-alice");
        var (b, _) = await App.ReceiveAsync("cr1-b", "cr1-bob");
        var onB = await LivePageAsync($"/Tickets/{b}");
        await Assertions.Expect(onB.Locator($"#links-panel li[data-link='{a}']")).ToHaveCountAsync(0);
        // The other agent has started typing into B's link form: the live update leaves it alone.
        await onB.Locator("#LinkTarget").FillAsync("12345");

        var onA = await LivePageAsync($"/Tickets/{a}");
        await onA.Locator("#LinkTarget").FillAsync(b.ToString());
        await onA.Locator("#link-form button[type=submit]").ClickAsync();
        await Assertions.Expect(onA.Locator($"#links-panel li[data-link='{b}']")).ToContainTextAsync($"#{b}");

        await Assertions.Expect(onB.Locator($"#links-panel li[data-link='{a}']")).ToContainTextAsync($"#{a}");
        await Assertions.Expect(onB.Locator("#LinkTarget")).ToHaveValueAsync("12345");

        // Unlinking on A takes it off B's panel too.
        await onA.Locator($"#links-panel li[data-link='{b}'] button").ClickAsync();
        await Assertions.Expect(onB.Locator($"#links-panel li[data-link='{a}']")).ToHaveCountAsync(0);
    }

    /// <summary>Review CX5: the links list and the timeline reload independently; a links fetch that fails (here always
    /// aborted) still lets the timeline show the customer's new message.</summary>
    [Fact]
    public async Task A_failing_links_refresh_does_not_keep_the_open_timeline_from_showing_a_new_message()
    {
        await App.CreateApiChannelAsync();
        var (ticket, _) = await App.ReceiveAsync("cx5-1", "cx5-carol");
        var page = await LivePageAsync($"/Tickets/{ticket}");
        var aborted = 0;
        await page.RouteAsync(new Regex(@"[?&]handler=Links\b"), async route =>
        {
            Interlocked.Increment(ref aborted);
            await route.AbortAsync();
        });

        Assert.Equal(ticket, (await App.ReceiveAsync("cx5-2", "cx5-carol")).Number);
        await Assertions.Expect(page.Locator("#timeline-host")).ToContainTextAsync("text cx5-2");
        // The links fetch was made (and failed) for that change: the route matched it.
        await Eventually.WaitForAsync(() => Task.FromResult(Volatile.Read(ref aborted)), n => n > 0, what: "the links refresh to be aborted");
    }

    [Fact]
    public async Task Mark_all_read_in_one_tab_sets_the_bell_of_another_open_tab_to_zero()
    {
        var notifier = App.Services.GetRequiredService<IFollowUpNotifier>();
        await notifier.NotifyAsync(new FollowUpNotice("customer-follow-up-due", null, Guid.NewGuid(), [Agent], false, null, Cause: "cr7-1"));
        await notifier.NotifyAsync(new FollowUpNotice("customer-follow-up-missed", null, Guid.NewGuid(), [Agent], false, null, Cause: "cr7-2"));
        var queues = await LivePageAsync("/Queues");
        var bell = queues.Locator("#notice-bell .count");
        await Assertions.Expect(bell).ToHaveTextAsync("2");

        var notices = await LivePageAsync("/Notices");
        await notices.Locator("#notices tr[data-unread='true'] button").First.ClickAsync();
        await Assertions.Expect(bell).ToHaveTextAsync("1");
        await notices.GetByRole(AriaRole.Button, new() { Name = "Mark all read" }).ClickAsync();
        await Assertions.Expect(bell).ToHaveTextAsync("0");
    }
}
