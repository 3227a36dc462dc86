using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Grains;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Api;

/// <summary>Defect 12: tags, custom fields and texts have limits; a request over one is a 422 naming the field and
/// changes nothing.</summary>
public sealed class InputLimitTests : AppTest
{
    private async Task<(long Ticket, Guid Customer)> ReceiveAsync(string id)
    {
        var accepted = await (await App.PostMessageAsync(new { messageId = id, sender = new { id = "sender-" + id }, text = "hello" }))
            .Content.ReadFromJsonAsync<JsonElement>();
        return (accepted.GetProperty("ticketNumber").GetInt64(), accepted.GetProperty("customerId").GetGuid());
    }

    private static async Task AssertInvalidAsync(HttpResponseMessage response, string field)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"expected 422 for {field}, got {(int)response.StatusCode}: {body}");
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal("urn:crm:problem:invalid", problem.GetProperty("type").GetString());
        Assert.Equal(field, problem.GetProperty("field").GetString());
    }

    private static string Text(int length) => new('x', length);

    private static HttpContent Json(string json) => new StringContent(json, System.Text.Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_null_tag_is_a_422_naming_tags_on_tickets_and_customers_not_a_500()
    {
        var (ticket, customer) = await ReceiveAsync("null-tag");
        using var agent = await App.AgentAsync();

        await AssertInvalidAsync(await agent.PatchAsync($"/api/v1/tickets/{ticket}", Json("""{"tags": ["vip", null]}""")), "tags");
        await AssertInvalidAsync(await agent.PatchAsync($"/api/v1/customers/{customer}", Json("""{"tags": [null]}""")), "tags");
        await AssertInvalidAsync(await agent.PatchAsync($"/api/v1/tickets/{ticket}", Json("""{"tags": ["  "]}""")), "tags");

        var stored = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Empty(stored.GetProperty("ticket").GetProperty("tags").EnumerateArray());
    }

    [Fact]
    public async Task Tags_are_limited_in_number_and_length_and_the_limit_itself_is_accepted()
    {
        var (ticket, customer) = await ReceiveAsync("tags");
        using var agent = await App.AgentAsync();
        var atLimit = Enumerable.Range(0, InputLimits.MaxTagsPerEntity).Select(i => $"tag-{i}").ToArray();
        var overLimit = atLimit.Append("one-more").ToArray();

        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { tags = overLimit }), "tags");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/customers/{customer}", new { tags = overLimit }), "tags");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { tags = new[] { Text(InputLimits.MaxTagLength + 1) } }), "tags");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/customers/{customer}", new { tags = new[] { Text(InputLimits.MaxTagLength + 1) } }), "tags");

        var accepted = await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { tags = atLimit.Take(InputLimits.MaxTagsPerEntity - 1).Append("TAG-0").Append(Text(InputLimits.MaxTagLength)) });
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        // "TAG-0" is "tag-0" once normalized, so 50 distinct tags.
        Assert.Equal(InputLimits.MaxTagsPerEntity, (await accepted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("tags").GetArrayLength());
        Assert.Equal(HttpStatusCode.OK, (await agent.PatchAsJsonAsync($"/api/v1/customers/{customer}", new { tags = new[] { Text(InputLimits.MaxTagLength) } })).StatusCode);
    }

    [Fact]
    public async Task Custom_fields_are_limited_in_number_key_length_and_value_length()
    {
        var (_, customer) = await ReceiveAsync("custom");
        using var agent = await App.AgentAsync();
        var path = $"/api/v1/customers/{customer}";

        await AssertInvalidAsync(await agent.PatchAsJsonAsync(path, new { customFields = new Dictionary<string, string> { [Text(InputLimits.MaxCustomFieldKeyLength + 1)] = "v" } }), "customFields");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync(path, new { customFields = new Dictionary<string, string> { [""] = "v" } }), "customFields");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync(path, new { customFields = new Dictionary<string, string> { ["plan"] = Text(InputLimits.MaxCustomFieldValueLength + 1) } }), "customFields.plan");
        var tooMany = Enumerable.Range(0, InputLimits.MaxCustomFields + 1).ToDictionary(i => $"field-{i}", i => "v");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync(path, new { customFields = tooMany }), "customFields");

        // The count that matters is the one after the change: 90 stored, then 20 more in a request that is fine on its own.
        var ninety = Enumerable.Range(0, 90).ToDictionary(i => $"field-{i}", i => "v");
        Assert.Equal(HttpStatusCode.OK, (await agent.PatchAsJsonAsync(path, new { customFields = ninety })).StatusCode);
        var twentyMore = Enumerable.Range(90, 20).ToDictionary(i => $"field-{i}", i => (string?)"v");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync(path, new { customFields = twentyMore }), "customFields");
        // Removing ten in the same request makes room.
        foreach (var i in Enumerable.Range(0, 10))
            twentyMore[$"field-{i}"] = null;
        Assert.Equal(HttpStatusCode.OK, (await agent.PatchAsJsonAsync(path, new { customFields = twentyMore })).StatusCode);

        var stored = await agent.GetFromJsonAsync<JsonElement>(path);
        var fields = stored.GetProperty("customFields");
        Assert.Equal(InputLimits.MaxCustomFields, fields.EnumerateObject().Count());
        Assert.False(fields.TryGetProperty("field-0", out _));
        Assert.Equal("v", fields.GetProperty("field-109").GetString());
    }

    [Fact]
    public async Task Subjects_names_notes_and_replies_have_a_length_limit()
    {
        var (ticket, customer) = await ReceiveAsync("texts");
        using var agent = await App.AgentAsync();

        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { subject = Text(InputLimits.MaxSubjectLength + 1) }), "subject");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { assignee = Text(InputLimits.MaxNameLength + 1) }), "assignee");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { team = Text(InputLimits.MaxNameLength + 1) }), "team");
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/notes", new { text = Text(InputLimits.MaxMessageTextLength + 1) }), "text");
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = Text(InputLimits.MaxMessageTextLength + 1) }), "text");
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = "hi", html = Text(InputLimits.MaxMessageTextLength + 1) }), "html");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/customers/{customer}", new { name = Text(InputLimits.MaxNameLength + 1) }), "name");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/customers/{customer}", new { organization = Text(InputLimits.MaxNameLength + 1) }), "organization");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/customers/{customer}", new { language = Text(InputLimits.MaxLanguageLength + 1) }), "language");
        await AssertInvalidAsync(await agent.PatchAsJsonAsync($"/api/v1/customers/{customer}", new { notes = Text(InputLimits.MaxNotesLength + 1) }), "notes");

        // At the limit is fine, and the refusals above changed nothing.
        Assert.Equal(HttpStatusCode.OK, (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { subject = Text(InputLimits.MaxSubjectLength) })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/notes", new { text = Text(InputLimits.MaxMessageTextLength) })).StatusCode);
        var details = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Equal(JsonValueKind.Null, details.GetProperty("ticket").GetProperty("assignee").ValueKind);
        Assert.Equal(2, details.GetProperty("timeline").GetArrayLength());
    }

    [Fact]
    public async Task The_grains_check_the_limits_themselves_and_a_refused_change_leaves_the_ticket_as_it_was()
    {
        var (ticket, customer) = await ReceiveAsync("grain-limits");
        var grain = App.Grains.GetGrain<ITicketGrain>(ticket);

        // Status first, tags last: a grain that applied fields one by one would have changed the status before refusing.
        var refused = await Assert.ThrowsAsync<DomainException>(() => grain.ChangeAsync(
            new TicketChange { Status = TicketStatus.Pending, Tags = ["ok", null!] }, "agent:ann"));
        Assert.Equal(DomainErrorKind.Invalid, refused.Kind);
        Assert.Equal("tags", refused.Field);
        Assert.Equal(TicketStatus.New, (await grain.GetAsync())!.Status);

        var tooMany = Enumerable.Range(0, InputLimits.MaxCustomFields + 1).ToDictionary(i => $"f{i}", i => (string?)"v");
        var refusedProfile = await Assert.ThrowsAsync<DomainException>(() => App.Grains.GetGrain<ICustomerGrain>(customer)
            .UpdateProfileAsync(new CustomerProfileChange { Name = "Changed", CustomFields = tooMany }, "agent:ann"));
        Assert.Equal("customFields", refusedProfile.Field);
        Assert.NotEqual("Changed", (await App.Grains.GetGrain<ICustomerGrain>(customer).GetAsync())!.Name);
    }
}
