using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Api;

public sealed class EnumBindingTests : AppTest
{
    private async Task<long> NewTicketAsync() =>
        (await (await App.PostMessageAsync(new { messageId = "enum-1", sender = new { id = "enum@example.com" }, text = "hello" }))
            .Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task AssertRefusedNamingAsync(HttpResponseMessage response, string field)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(field, problem.GetProperty("field").GetString());
    }

    [Theory]
    [InlineData("""{"status": 42}""", "status")]
    [InlineData("""{"status": 1}""", "status")]
    [InlineData("""{"priority": 42}""", "priority")]
    [InlineData("""{"priority": 2}""", "priority")]
    public async Task A_number_for_a_ticket_enum_field_is_refused_naming_the_field(string body, string field)
    {
        var ticket = await NewTicketAsync();
        using var agent = await App.AgentAsync();

        await AssertRefusedNamingAsync(await agent.PatchAsync($"/api/v1/tickets/{ticket}", Json(body)), field);

        var stored = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Equal("new", stored.GetProperty("ticket").GetProperty("status").GetString());
        Assert.Equal("normal", stored.GetProperty("ticket").GetProperty("priority").GetString());
    }

    [Fact]
    public async Task Enum_names_still_bind()
    {
        var ticket = await NewTicketAsync();
        using var agent = await App.AgentAsync();

        var response = await agent.PatchAsync($"/api/v1/tickets/{ticket}", Json("""{"status":"resolved","priority":"high"}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var changed = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("resolved", changed.GetProperty("status").GetString());
        Assert.Equal("high", changed.GetProperty("priority").GetString());
    }

    [Theory]
    [InlineData("""{"text":"hi","status": 42}""")]
    [InlineData("""{"text":"hi","status": 4}""")]
    public async Task A_number_for_the_reply_status_is_refused_naming_the_field(string body)
    {
        var ticket = await NewTicketAsync();
        using var agent = await App.AgentAsync();

        await AssertRefusedNamingAsync(await agent.PostAsync($"/api/v1/tickets/{ticket}/reply", Json(body)), "status");

        var stored = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Equal("new", stored.GetProperty("ticket").GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("""{"kind": 42, "name": "x"}""")]
    [InlineData("""{"kind": 0, "name": "x"}""")]
    public async Task A_number_for_the_channel_kind_is_refused_naming_the_field(string body)
    {
        using var admin = App.Admin();

        await AssertRefusedNamingAsync(await admin.PutAsync("/api/v1/admin/channels/numeric", Json(body)), "kind");

        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/admin/channels/numeric")).StatusCode);
    }
}
