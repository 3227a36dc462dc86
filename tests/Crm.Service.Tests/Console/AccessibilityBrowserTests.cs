using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Console;

/// <summary>
/// admin17, issue 17 ("Accessible markup: labels, focus, contrast"): the main console pages in chromium, checked for
/// what docs/console.md's "Accessibility" paragraph promises: every form control has an accessible name (a label,
/// aria-label or aria-labelledby; a button its text), every image an alt, one h1 and one main landmark per page, and a
/// visible keyboard focus (the element Tab moves to has an outline or a box-shadow).
/// </summary>
public sealed class AccessibilityBrowserTests : BrowserTest
{
    private const string User = "admin@example.com";
    protected override async Task SetUpAsync()
    {
        await App.CreateApiChannelAsync();
        await ConsoleBrowser.CreateUserAsync(App, User, ConsoleRoles.Admin, ConsoleRoles.Agent, ConsoleRoles.Supervisor);
    }

    /// <summary>The page's problems, one line each ("unnamed control: input#x").</summary>
    private const string Audit = """
        () => {
          const problems = [];
          const describe = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : '')
            + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
          const text = s => (s || '').trim().length > 0;
          const named = el => {
            if (text(el.getAttribute('aria-label'))) return true;
            const by = el.getAttribute('aria-labelledby');
            if (by && by.split(/\s+/).some(id => text(document.getElementById(id)?.textContent))) return true;
            if (el.labels && [...el.labels].some(l => text(l.textContent) || l.querySelector('img[alt]:not([alt=""])'))) return true;
            if (el.tagName === 'BUTTON') return text(el.textContent);
            if (el.tagName === 'INPUT' && ['submit', 'button', 'reset'].includes(el.type)) return text(el.value);
            return false;
          };
          for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
            if (!named(el)) problems.push('unnamed control: ' + describe(el));
          for (const img of document.querySelectorAll('img:not([alt]), input[type=image]:not([alt])'))
            problems.push('image without alt: ' + describe(img));
          const h1 = document.querySelectorAll('h1').length;
          if (h1 !== 1) problems.push(h1 + ' h1 elements');
          const main = document.querySelectorAll('main, [role=main]').length;
          if (main !== 1) problems.push(main + ' main landmarks');
          return problems;
        }
        """;

    /// <summary>The focused element's look: "" when its focus shows, else its description.</summary>
    private const string FocusShown = """
        () => {
          const el = document.activeElement;
          if (!el || el === document.body) return '';
          const style = getComputedStyle(el);
          const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
          const shadow = style.boxShadow && style.boxShadow !== 'none';
          return outline || shadow ? '' : el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' "' + (el.textContent || el.name || '').trim().slice(0, 30) + '"';
        }
        """;

    private async Task<List<string>> CheckAsync(IPage page, string path)
    {
        await page.GotoAsync(BaseUrl + path);
        await page.Locator("#main").WaitForAsync();
        var problems = (await page.EvaluateAsync<string[]>(Audit)).Select(p => $"{path}: {p}").ToList();
        // Keyboard focus: the first 25 stops of Tab each show where the focus is.
        await page.Locator("body").FocusAsync();
        for (var i = 0; i < 25; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            if (await page.EvaluateAsync<string>(FocusShown) is { Length: > 0 } hidden)
                problems.Add($"{path}: focus not visible on {hidden}");
        }
        return problems;
    }

    [Fact]
    public async Task The_main_console_pages_name_every_control_and_image_have_one_h1_and_main_and_show_the_focus()
    {
        var response = await App.PostMessageAsync(new { messageId = "a11y-1", sender = new { id = "+15550100001", name = "Alice Example" }, subject = "Printer", text = "It jams." });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var number = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();

        var page = await SignedInPageAsync(User, arrivedAt: new Regex("/Queues"));
        await page.GotoAsync($"{BaseUrl}/Tickets/{number}");
        var customer = await page.Locator("a[href^='/Customers/']").First.GetAttributeAsync("href");
        Assert.NotNull(customer);

        var problems = new List<string>();
        foreach (var path in new[]
                 {
                     "/Account/Login", "/Queues", $"/Tickets/{number}", customer!, "/Search", "/Profile",
                     "/Admin", "/Admin/Teams", "/Admin/Keys", "/Admin/Channels", "/Admin/Channels/Edit/bridge", "/Admin/Channels/Edit?kind=email",
                     "/Admin/Widgets", "/Admin/Quarantine", "/Admin/Routing/Assignment", "/Admin/Routing/Rules", "/Admin/Routing/SlaPolicies", "/Admin/Routing/Calendars",
                 })
        {
            if (path == "/Account/Login")
            {
                var anonymous = await Browser.NewPageAsync();
                problems.AddRange(await CheckAsync(anonymous, path));
                await anonymous.CloseAsync();
                continue;
            }
            problems.AddRange(await CheckAsync(page, path));
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems.Distinct()));
    }
}
