using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Api;

public sealed class AgentApiTests : AppTest
{
    private async Task<JsonElement> ReceiveAsync(string id, string sender, string text = "hello", string? thread = null) =>
        await (await App.PostMessageAsync(new { messageId = id, threadKey = thread, sender = new { id = sender }, text })).Content.ReadFromJsonAsync<JsonElement>();

    [Fact]
    public async Task The_api_needs_a_key_and_admin_routes_need_the_admin_role()
    {
        using var anonymous = App.CreateClient();
        using var agent = await App.AgentAsync();
        using var forged = App.CreateClient();
        forged.DefaultRequestHeaders.Add("X-Api-Key", "crm_forged");

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/tickets")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await forged.GetAsync("/api/v1/tickets")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await agent.GetAsync("/api/v1/tickets")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await agent.PostAsJsonAsync("/api/v1/admin/api-keys", new { name = "x", role = "admin" })).StatusCode);
    }

    [Fact]
    public async Task A_revoked_key_stops_working()
    {
        using var admin = App.Admin();
        var created = await (await admin.PostAsJsonAsync("/api/v1/admin/api-keys", new { name = "temp", role = "agent" })).Content.ReadFromJsonAsync<JsonElement>();
        using var client = App.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", created.GetProperty("key").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/tickets")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/admin/api-keys/{created.GetProperty("id").GetGuid()}")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/tickets")).StatusCode);
    }

    [Fact]
    public async Task Queues_filter_by_status_assignee_team_and_customer_and_page_by_cursor()
    {
        var tickets = new List<JsonElement>();
        for (var i = 0; i < 5; i++)
            tickets.Add(await ReceiveAsync($"q-{i}", $"cust-{i}"));
        using var agent = await App.AgentAsync();
        var first = tickets[0].GetProperty("ticketNumber").GetInt64();
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{first}", new { assignee = "ann", team = "billing", status = "pending" })).EnsureSuccessStatusCode();

        var byAssignee = await agent.GetFromJsonAsync<JsonElement>("/api/v1/tickets?assignee=ann");
        var byTeamAndStatus = await agent.GetFromJsonAsync<JsonElement>("/api/v1/tickets?team=billing&status=Pending");
        var newOnes = await agent.GetFromJsonAsync<JsonElement>("/api/v1/tickets?status=new&pageSize=2");
        var page2 = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets?status=new&pageSize=2&cursor={newOnes.GetProperty("nextCursor").GetString()}");
        var byCustomer = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets?customer={tickets[3].GetProperty("customerId").GetGuid()}");

        Assert.Equal(first, Assert.Single(byAssignee.GetProperty("items").EnumerateArray()).GetProperty("number").GetInt64());
        Assert.Equal(first, Assert.Single(byTeamAndStatus.GetProperty("items").EnumerateArray()).GetProperty("number").GetInt64());
        Assert.Equal(2, newOnes.GetProperty("items").GetArrayLength());
        Assert.True(newOnes.GetProperty("hasMore").GetBoolean());
        // Four new tickets in pages of two: the one row read beyond the page tells that the second page is the last.
        Assert.Equal(2, page2.GetProperty("items").GetArrayLength());
        Assert.False(page2.GetProperty("hasMore").GetBoolean());
        Assert.Equal(JsonValueKind.Null, page2.GetProperty("nextCursor").ValueKind);
        Assert.Equal(tickets[3].GetProperty("ticketNumber").GetInt64(), Assert.Single(byCustomer.GetProperty("items").EnumerateArray()).GetProperty("number").GetInt64());
    }

    [Fact]
    public async Task Bad_agent_requests_name_the_field()
    {
        var ticket = (await ReceiveAsync("b-1", "c")).GetProperty("ticketNumber").GetInt64();
        using var agent = await App.AgentAsync();

        var badStatus = await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "sleeping" });
        var badQuery = await agent.GetAsync("/api/v1/tickets?status=sleeping");
        var emptyReply = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = "" });
        var missing = await agent.GetAsync("/api/v1/tickets/99999999");
        var mergeSelf = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/merge", new { into = ticket });

        Assert.Equal((HttpStatusCode.BadRequest, "status"), (badStatus.StatusCode, await FieldAsync(badStatus)));
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "status"), (badQuery.StatusCode, await FieldAsync(badQuery)));
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "text"), (emptyReply.StatusCode, await FieldAsync(emptyReply)));
        Assert.Equal((HttpStatusCode.NotFound, "number"), (missing.StatusCode, await FieldAsync(missing)));
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "into"), (mergeSelf.StatusCode, await FieldAsync(mergeSelf)));
    }

    private static async Task<string?> FieldAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>()).TryGetProperty("field", out var field) ? field.GetString() : null;

    [Fact]
    public async Task Notes_merge_and_split_through_the_api_show_in_the_timeline_and_history()
    {
        var a = await ReceiveAsync("t-1", "same", "first problem", thread: "one");
        var b = await ReceiveAsync("t-2", "same", "second problem", thread: "two");
        var c = await ReceiveAsync("t-3", "same", "third problem", thread: "one");
        var ticketA = a.GetProperty("ticketNumber").GetInt64();
        var ticketB = b.GetProperty("ticketNumber").GetInt64();
        using var agent = await App.AgentAsync("ann");

        (await agent.PostAsJsonAsync($"/api/v1/tickets/{ticketA}/notes", new { text = "VIP, be quick" })).EnsureSuccessStatusCode();
        (await agent.PostAsJsonAsync($"/api/v1/tickets/{ticketB}/merge", new { into = ticketA })).EnsureSuccessStatusCode();
        var split = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticketA}/split", new { messageId = c.GetProperty("messageId").GetGuid() });
        Assert.Equal(HttpStatusCode.Created, split.StatusCode);
        var newTicket = (await split.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("number").GetInt64();

        var details = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticketA}");
        var texts = details.GetProperty("timeline").EnumerateArray().Select(m => m.GetProperty("text").GetString()).ToList();
        Assert.Equal(["VIP, be quick", "first problem", "second problem"], texts.Order(StringComparer.Ordinal));
        var history = details.GetProperty("history").EnumerateArray().Select(h => (h.GetProperty("action").GetString(), h.GetProperty("actor").GetString())).ToList();
        Assert.Contains(("merged-in", "apikey:ann"), history);
        Assert.Contains(("split", "apikey:ann"), history);
        var splitTicket = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{newTicket}");
        Assert.Equal("third problem", Assert.Single(splitTicket.GetProperty("timeline").EnumerateArray()).GetProperty("text").GetString());
    }
}

public sealed class AgentApiRateLimitTests : AppTest
{
    internal override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Auth:RequestsPerSecondPerClient"] = "1",
        ["Auth:BurstPerClient"] = "5",
    };

    [Fact]
    public async Task Guessing_keys_at_speed_is_cut_off_with_429()
    {
        using var guesser = App.CreateClient();
        var statuses = new List<System.Net.HttpStatusCode>();
        for (var i = 0; i < 20; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/tickets");
            request.Headers.Add("X-Api-Key", $"crm_guess_{i}");
            statuses.Add((await guesser.SendAsync(request)).StatusCode);
        }
        Assert.Contains(System.Net.HttpStatusCode.Unauthorized, statuses);
        Assert.Contains(System.Net.HttpStatusCode.TooManyRequests, statuses);
    }
}
