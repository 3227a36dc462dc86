using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Console;

/// <summary>Customer 360: notes, tags and custom fields on the page; external events through the API in the timeline.</summary>
public sealed class ConsoleCustomerTests : AppTest
{
    private async Task<Guid> CustomerAsync()
    {
        var response = await App.PostMessageAsync(new { messageId = "m-1", sender = new { id = "alice", name = "Alice" }, subject = "Order", text = "Where is it?" });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("customerId").GetGuid();
    }

    [Fact]
    public async Task External_events_are_validated_stored_once_per_event_id_and_shown_in_the_customers_timeline()
    {
        var customer = await CustomerAsync();
        using var api = App.Admin();
        using var anonymous = App.CreateClient();
        var order = new { eventId = "order-4711", type = "order.placed", time = "2026-11-20T10:00:00+01:00", title = "Order #4711 <b>2 items</b>", amount = 59.90m, currency = "EUR", link = "https://shop.example/orders/4711", data = new { items = 2 } };

        var created = await api.PostAsJsonAsync($"/api/v1/customers/{customer}/events", order);
        var repeated = await api.PostAsJsonAsync($"/api/v1/customers/{customer}/events", order);
        var reused = await api.PostAsJsonAsync($"/api/v1/customers/{customer}/events", order with { });
        var different = await api.PostAsJsonAsync($"/api/v1/customers/{customer}/events", new { eventId = "order-4711", type = "order.placed", time = "2026-11-20T10:00:00+01:00", title = "Something else" });
        var script = await api.PostAsJsonAsync($"/api/v1/customers/{customer}/events", new { eventId = "e2", type = "x", time = "2026-11-20T10:00:00Z", title = "x", link = "javascript:alert(1)" });
        var noType = await api.PostAsJsonAsync($"/api/v1/customers/{customer}/events", new { eventId = "e3", time = "2026-11-20T10:00:00Z", title = "x" });
        var notObject = await api.PostAsJsonAsync($"/api/v1/customers/{customer}/events", new { eventId = "e4", type = "x", time = "2026-11-20T10:00:00Z", title = "x", data = new[] { 1 } });
        var nobody = await api.PostAsJsonAsync($"/api/v1/customers/{Guid.NewGuid()}/events", order);
        var noKey = await anonymous.PostAsJsonAsync($"/api/v1/customers/{customer}/events", order);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, repeated.StatusCode);
        Assert.Equal((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid(), (await repeated.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid());
        Assert.Equal(HttpStatusCode.OK, reused.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, different.StatusCode);
        Assert.Contains("eventId", await different.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, script.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, noType.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, notObject.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, nobody.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, noKey.StatusCode);
        Assert.Equal(1, await App.QueryAsync(db => Task.FromResult(db.CustomerEvents.Count())));

        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        var page = await agent.PageAsync($"/Customers/{customer}");
        Assert.Contains("data-event=\"order-4711\"", page, StringComparison.Ordinal);
        Assert.Contains("href=\"https://shop.example/orders/4711\" rel=\"noopener noreferrer nofollow\"", page, StringComparison.Ordinal);
        Assert.Contains("Order #4711 &lt;b&gt;2 items&lt;/b&gt;", page, StringComparison.Ordinal);
        Assert.Contains("59.90 EUR", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_edits_a_customers_notes_tags_and_custom_fields()
    {
        var customer = await CustomerAsync();
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);

        var saved = await agent.SubmitAsync($"/Customers/{customer}", new() { ["NotesText"] = "Prefers mail", ["TagsText"] = "VIP, reseller", ["FieldsText"] = "plan = gold\ncity = Berlin" }, $"/Customers/{customer}?handler=Profile");
        var removed = await agent.SubmitAsync($"/Customers/{customer}", new() { ["NotesText"] = "Prefers mail", ["TagsText"] = "vip", ["FieldsText"] = "plan = platinum" }, $"/Customers/{customer}?handler=Profile");
        var bad = await agent.SubmitAsync($"/Customers/{customer}", new() { ["FieldsText"] = "no equals sign" }, $"/Customers/{customer}?handler=Profile");

        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, removed.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bad.StatusCode);
        var row = await App.QueryAsync(db => Task.FromResult(db.Customers.Single(c => c.Id == customer)));
        Assert.Equal("Prefers mail", row.Notes);
        Assert.Equal(["vip"], row.Tags);
        Assert.Equal(new Dictionary<string, string> { ["plan"] = "platinum" }, row.CustomFields);
        var audit = await App.QueryAsync(db => Task.FromResult(db.Audit.Where(a => a.EntityId == customer.ToString()).Select(a => a.Actor).ToList()));
        Assert.Contains("user:agent@example.com", audit);
    }
}
