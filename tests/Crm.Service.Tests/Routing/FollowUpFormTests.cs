using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Routing;

/// <summary>rt20: the console records the customer follow-up log (issue 20) on the customer and ticket pages, through the
/// handler of POST /api/v1/customers/{id}/follow-ups.</summary>
public sealed class FollowUpFormTests
{
    private static string? FieldError(string html, string key)
    {
        var match = Regex.Match(html, "data-valmsg-for=\"" + Regex.Escape(key) + "\"[^>]*>([^<]*)<");
        return match.Success && match.Groups[1].Value.Length > 0 ? WebUtility.HtmlDecode(match.Groups[1].Value) : null;
    }

    private static async Task<string> RefusedAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task The_customer_and_ticket_pages_record_a_follow_up_through_the_api_handler_with_refusals_at_their_fields()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var bob = await ConsoleBrowser.SignedInAsync(app, "bob@example.com", ConsoleRoles.Agent);
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [await app.UserIdAsync("bob@example.com")], CancellationToken.None);
        var scenario = await new GrainScenario(app.Grains).CreateChannelAsync();
        var opened = await scenario.ReceiveAsync(scenario.Message("fuf-1", GrainScenario.NewPhone(), "Call me"));
        var (customer, ticket) = (opened.CustomerId, opened.TicketNumber);
        var page = $"/Customers/{customer}";
        var action = page + "?handler=RecordFollowUp";
        Assert.Contains("id=\"follow-up-form\"", await bob.PageAsync(page), StringComparison.Ordinal);
        using var api = await app.AgentAsync("alice");
        async Task<List<JsonElement>> LogAsync() =>
            [.. (await api.GetFromJsonAsync<JsonElement>($"/api/v1/customers/{customer}/follow-ups")).GetProperty("items").EnumerateArray()];

        // The API's refusals, at the field they name; what was typed stays in the form; nothing is stored.
        var html = await RefusedAsync(await bob.SubmitAsync(page, new() { ["FollowUpHow"] = "visit", ["FollowUpTeam"] = "nosuch" }, action));
        Assert.StartsWith("There is no team 'nosuch'", FieldError(html, "FollowUpTeam"), StringComparison.Ordinal);
        Assert.Contains("value=\"nosuch\"", html, StringComparison.Ordinal);
        html = await RefusedAsync(await bob.SubmitAsync(page, new() { ["FollowUpHow"] = "visit", ["FollowUpNextDue"] = DateTime.UtcNow.AddYears(3).ToString("yyyy-MM-ddTHH:mm", System.Globalization.CultureInfo.InvariantCulture) }, action));
        Assert.Contains("at most", FieldError(html, "FollowUpNextDue"), StringComparison.Ordinal);
        html = await RefusedAsync(await bob.SubmitAsync(page, new() { ["FollowUpHow"] = "visit", ["FollowUpAt"] = DateTime.UtcNow.AddDays(1).ToString("yyyy-MM-ddTHH:mm", System.Globalization.CultureInfo.InvariantCulture) }, action));
        Assert.Contains("cannot be in the future", FieldError(html, "FollowUpAt"), StringComparison.Ordinal);
        html = await RefusedAsync(await bob.SubmitAsync(page, new() { ["FollowUpHow"] = "visit", ["FollowUpAt"] = "yesterday" }, action));
        Assert.Contains("yyyy-mm-dd hh:mm", FieldError(html, "FollowUpAt"), StringComparison.Ordinal);
        html = await RefusedAsync(await bob.SubmitAsync(page, new() { ["FollowUpHow"] = "pigeon" }, action));
        Assert.NotNull(FieldError(html, "FollowUpHow"));
        Assert.Empty(await LogAsync());

        // Recorded from the customer page; the same form submitted twice (its one-time id) records one entry.
        var nextDue = DateTime.UtcNow.AddDays(1).ToString("yyyy-MM-ddTHH:mm", System.Globalization.CultureInfo.InvariantCulture);
        var visit = new Dictionary<string, string>
        {
            ["FollowUpRequestId"] = Guid.NewGuid().ToString("N"), ["FollowUpHow"] = "visit", ["FollowUpOutcome"] = "Showed the new model",
            ["FollowUpNextDue"] = nextDue, ["FollowUpTeam"] = "Sales",
        };
        Assert.Equal(HttpStatusCode.Redirect, (await bob.SubmitAsync(page, new(visit), action)).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await bob.SubmitAsync(page, new(visit), action)).StatusCode);
        // And from the ticket page, tied to the ticket.
        Assert.Equal(HttpStatusCode.Redirect, (await bob.SubmitAsync($"/Tickets/{ticket}",
            new() { ["FollowUpHow"] = "phone", ["FollowUpOutcome"] = "Called back" }, $"/Tickets/{ticket}?handler=RecordFollowUp")).StatusCode);
        var log = await LogAsync();
        Assert.Equal(2, log.Count);
        var recorded = log.Single(e => e.GetProperty("how").GetString() == "visit");
        Assert.Equal(("Showed the new model", "sales"), (recorded.GetProperty("outcome").GetString(), recorded.GetProperty("team").GetString()));
        Assert.Equal(recorded.GetProperty("by").GetString(), recorded.GetProperty("owner").GetString());
        Assert.Equal(nextDue, recorded.GetProperty("nextDueAt").GetDateTimeOffset().UtcDateTime.ToString("yyyy-MM-ddTHH:mm", System.Globalization.CultureInfo.InvariantCulture));
        var call = log.Single(e => e.GetProperty("how").GetString() == "phone");
        Assert.Equal(ticket, call.GetProperty("ticket").GetInt64());
        Assert.Contains("Showed the new model", await bob.PageAsync(page), StringComparison.Ordinal);

        // No anti-forgery token: refused. A signed-in person without the agent role: the access-denied page.
        Assert.Equal(HttpStatusCode.BadRequest, (await bob.PostWithoutTokenAsync(action, new() { ["FollowUpHow"] = "visit" })).StatusCode);
        using var editor = await ConsoleBrowser.SignedInAsync(app, "kim@example.com", ConsoleRoles.KnowledgeEditor);
        var denied = await editor.SubmitAsync("/Profile", new() { ["FollowUpHow"] = "visit" }, action);
        Assert.Equal(HttpStatusCode.Redirect, denied.StatusCode);
        Assert.StartsWith("/Account/AccessDenied", denied.Headers.Location!.IsAbsoluteUri ? denied.Headers.Location.PathAndQuery : denied.Headers.Location.OriginalString, StringComparison.Ordinal);
        Assert.Equal(2, (await LogAsync()).Count);
    }
}
