using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Routing;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Console;

/// <summary>rtkb8 in headless chromium: the SLA policy form edits every escalation level the admin API takes, and the
/// calendar form imports an .ics file's holidays through the API's own import.</summary>
public sealed class RoutingAdminFormsBrowserTests : BrowserTest
{


    private async Task<IPage> SignedInAdminAsync()
    {
        await ConsoleBrowser.CreateUserAsync(App, "admin@example.com", ConsoleRoles.Admin, ConsoleRoles.Agent);
        var page = await SignedInPageAsync("admin@example.com");
        page.SetDefaultTimeout(60_000);
        return page;
    }

    private static string Use(int row) => $"#Policy_Escalations_{row}__Use";

    [Fact]
    public async Task The_SLA_form_shows_the_stored_levels_plus_an_empty_row_and_adds_levels_up_to_the_APIs_ten()
    {
        // A policy with four levels, stored through the API: the form shows the four and one empty row.
        using (var admin = App.Admin())
        {
            var put = await admin.PutAsJsonAsync("/api/v1/admin/sla-policies/silver", new
            {
                name = "Silver",
                targets = new[] { new { priority = "normal", firstResponse = "04:00:00" } },
                escalations = Enumerable.Range(0, 4).Select(i => new { after = $"0{i}:00:00", notifySupervisors = true }).ToArray(),
            });
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }
        var page = await SignedInAdminAsync();
        await page.GotoAsync(BaseUrl + "/Admin/Routing/SlaPolicies?edit=silver");
        await Assertions.Expect(page.Locator(Use(3))).ToBeCheckedAsync();
        await Assertions.Expect(page.Locator(Use(4))).Not.ToBeCheckedAsync();
        await Assertions.Expect(page.Locator(Use(5))).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#Policy_Escalations_3__After")).ToHaveValueAsync("03:00:00");

        // A new policy: level 1 and an empty row; "add level" (a post, no script) adds rows, keeping what was typed,
        // until the API's maximum.
        await page.GotoAsync(BaseUrl + "/Admin/Routing/SlaPolicies");
        await page.Locator("#Policy_Id").FillAsync("gold");
        await page.Locator("#Policy_Name").FillAsync("Gold");
        await page.Locator("#Policy_Targets_1__FirstResponse").FillAsync("04:00");
        for (var row = 1; row < Crm.Service.Api.RoutingApi.MaxEscalations; row++)
        {
            await page.Locator(Use(row)).CheckAsync();
            await page.Locator($"#Policy_Escalations_{row}__After").FillAsync($"{row:00}:00");
            if (row < Crm.Service.Api.RoutingApi.MaxEscalations - 1)
            {
                await Assertions.Expect(page.Locator(Use(row + 1))).ToHaveCountAsync(0);
                await page.Locator("#add-escalation-level").ClickAsync();
                await Assertions.Expect(page.Locator(Use(row + 1))).ToHaveCountAsync(1);
            }
        }
        await Assertions.Expect(page.Locator("#add-escalation-level")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#Policy_Escalations_1__After")).ToHaveValueAsync("01:00");
        await Assertions.Expect(page.Locator("#Policy_Name")).ToHaveValueAsync("Gold");
        await page.Locator("#policy-form button.primary").ClickAsync();
        await Assertions.Expect(page.Locator("#routing-settings tr[data-id='gold']")).ToContainTextAsync("Gold");

        var stored = RoutingJson.Read<SlaPolicy>((await App.Services.GetRequiredService<IRoutingStore>().GetAsync(RoutingKinds.SlaPolicy, "gold", CancellationToken.None))!);
        Assert.Equal(10, stored.Escalations.Count);
        Assert.Equal([.. Enumerable.Range(0, 10).Select(h => TimeSpan.FromHours(h))], stored.Escalations.Select(e => e.After).ToArray());

        // Stored with ten levels: all ten shown, no empty row and no "add level".
        await page.GotoAsync(BaseUrl + "/Admin/Routing/SlaPolicies?edit=gold");
        await Assertions.Expect(page.Locator("#Policy_Escalations_9__After")).ToHaveValueAsync("09:00:00");
        await Assertions.Expect(page.Locator(Use(10))).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#add-escalation-level")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task The_calendar_form_imports_an_ics_files_holidays_and_shows_a_refused_file_at_the_field()
    {
        using (var admin = App.Admin())
        {
            var put = await admin.PutAsJsonAsync("/api/v1/admin/calendars/cn", new
            {
                name = "Shanghai office",
                timeZone = "Asia/Shanghai",
                hours = new[] { new { day = "monday", open = "09:00:00", close = "17:00:00" } },
                holidays = new[] { "2026-01-01" },
            });
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }
        var page = await SignedInAdminAsync();
        await page.GotoAsync(BaseUrl + "/Admin/Routing/Calendars?edit=cn");
        var error = page.Locator("[data-valmsg-for='IcsFile']");

        // Not a calendar: the import's own message, at the file field, with the calendar still on screen.
        await page.Locator("#IcsFile").SetInputFilesAsync(new FilePayload { Name = "holidays.ics", MimeType = "text/calendar", Buffer = Encoding.UTF8.GetBytes("hello") });
        await page.Locator("#holiday-import-form button[type=submit]").ClickAsync();
        await Assertions.Expect(error).ToContainTextAsync("iCalendar");
        await Assertions.Expect(page.Locator("#Calendar_Name")).ToHaveValueAsync("Shanghai office");

        // Larger than the API takes: refused at the field with the API's limit.
        await page.Locator("#IcsFile").SetInputFilesAsync(new FilePayload { Name = "big.ics", MimeType = "text/calendar", Buffer = new byte[HolidayImport.MaxBytes + 1] });
        await page.Locator("#holiday-import-form button[type=submit]").ClickAsync();
        await Assertions.Expect(error).ToContainTextAsync($"larger than {HolidayImport.MaxBytes / 1024} KiB");

        // A real file: National Day (three days, DTEND exclusive) becomes three holidays, added to the stored one.
        const string ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:national-day@test\r\n" +
            "DTSTART;VALUE=DATE:20261001\r\nDTEND;VALUE=DATE:20261004\r\nSUMMARY:National Day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        await page.Locator("#IcsFile").SetInputFilesAsync(new FilePayload { Name = "cn.ics", MimeType = "text/calendar", Buffer = Encoding.UTF8.GetBytes(ics) });
        await page.Locator("#ImportFrom").FillAsync("2026");
        await page.Locator("#ImportTo").FillAsync("2026");
        await page.Locator("#holiday-import-form button[type=submit]").ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("edit=cn$"));
        await Assertions.Expect(page.Locator("#Calendar_Holidays")).ToHaveValueAsync("2026-01-01\n2026-10-01\n2026-10-02\n2026-10-03");
        await Assertions.Expect(error).ToHaveCountAsync(0);

        // The import is a form post like the others: without the anti-forgery token it is refused and nothing is added.
        // (The signed-in browser's own cookies, with the file and no token.)
        var forged = page.APIRequest.CreateFormData();
        forged.Set("IcsFile", new FilePayload { Name = "forged.ics", MimeType = "text/calendar", Buffer = Encoding.UTF8.GetBytes(ics.Replace("20261001", "20261101").Replace("20261004", "20261102")) });
        forged.Set("ImportFrom", "2026");
        var refused = await page.APIRequest.PostAsync(BaseUrl + "/Admin/Routing/Calendars?handler=Import&id=cn", new() { Multipart = forged, MaxRedirects = 0 });
        Assert.Equal((int)HttpStatusCode.BadRequest, refused.Status);

        var stored = RoutingJson.Read<BusinessCalendarDefinition>((await App.Services.GetRequiredService<IRoutingStore>().GetAsync(RoutingKinds.Calendar, "cn", CancellationToken.None))!);
        Assert.Equal([new DateOnly(2026, 1, 1), new DateOnly(2026, 10, 1), new DateOnly(2026, 10, 2), new DateOnly(2026, 10, 3)], stored.Holidays);
    }
}
