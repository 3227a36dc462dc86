using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Api;

/// <summary>Idempotency-Key belongs to the caller's API key and to one request body.</summary>
public sealed class ReplyIdempotencyTests : AppTest
{
    private async Task<long> OpenTicketAsync(string messageId = "in-1")
    {
        var response = await App.PostMessageAsync(new { messageId, sender = new { id = "user-" + messageId }, text = "Help" });
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private static Task<HttpResponseMessage> ReplyAsync(HttpClient agent, long ticket, string text, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/tickets/{ticket}/reply") { Content = JsonContent.Create(new { text }) };
        if (key is not null)
            request.Headers.TryAddWithoutValidation("Idempotency-Key", key);
        return agent.SendAsync(request);
    }

    [Fact]
    public async Task Two_clients_using_the_same_key_each_get_their_own_reply()
    {
        var ticket = await OpenTicketAsync();
        using var ann = await App.AgentAsync("ann");
        using var bob = await App.AgentAsync("bob");

        var annReply = await ReplyAsync(ann, ticket, "Ann's answer", "reply-1");
        var bobReply = await ReplyAsync(bob, ticket, "Bob's answer", "reply-1");

        Assert.Equal(HttpStatusCode.Created, annReply.StatusCode);
        Assert.Equal(HttpStatusCode.Created, bobReply.StatusCode);
        var annId = (await annReply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var bobBody = await bobReply.Content.ReadFromJsonAsync<JsonElement>();
        Assert.NotEqual(annId, bobBody.GetProperty("id").GetGuid());
        Assert.Equal("Bob's answer", bobBody.GetProperty("text").GetString());
        Assert.Equal(2, await App.QueryAsync(db => db.Outbox.CountAsync()));
    }

    [Fact]
    public async Task A_retry_with_the_same_key_and_body_returns_the_first_reply()
    {
        var ticket = await OpenTicketAsync();
        using var ann = await App.AgentAsync("ann");

        var first = await (await ReplyAsync(ann, ticket, "Once", "retry-me")).Content.ReadFromJsonAsync<JsonElement>();
        var retry = await ReplyAsync(ann, ticket, "Once", "retry-me");

        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.Equal(first.GetProperty("id").GetGuid(), (await retry.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid());
        Assert.Equal(1, await App.QueryAsync(db => db.Outbox.CountAsync()));
    }

    [Fact]
    public async Task The_same_key_with_another_body_or_on_another_ticket_is_refused()
    {
        var ticket = await OpenTicketAsync();
        var other = await OpenTicketAsync("in-2");
        using var ann = await App.AgentAsync("ann");
        Assert.Equal(HttpStatusCode.Created, (await ReplyAsync(ann, ticket, "Original", "k-1")).StatusCode);

        var changed = await ReplyAsync(ann, ticket, "Something else", "k-1");
        var elsewhere = await ReplyAsync(ann, other, "Original", "k-1");

        foreach (var response in new[] { changed, elsewhere })
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("Idempotency-Key", problem.GetProperty("field").GetString());
        }
        Assert.Equal(1, await App.QueryAsync(db => db.Outbox.CountAsync()));
    }

    [Theory]
    [InlineData(201)]
    [InlineData(5000)]
    public async Task An_over_long_key_is_refused_not_ignored(int length)
    {
        var ticket = await OpenTicketAsync();
        using var ann = await App.AgentAsync("ann");

        var response = await ReplyAsync(ann, ticket, "Hello", new string('k', length));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("Idempotency-Key", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        Assert.Equal(0, await App.QueryAsync(db => db.Outbox.CountAsync()));
    }

    [Fact]
    public async Task An_over_long_identity_to_detach_is_refused_before_any_grain_is_asked()
    {
        var posted = await (await App.PostMessageAsync(new { messageId = "d-1", sender = new { id = "u-d" }, text = "Hi" })).Content.ReadFromJsonAsync<JsonElement>();
        using var ann = await App.AgentAsync("ann");

        var response = await ann.PostAsJsonAsync($"/api/v1/customers/{posted.GetProperty("customerId").GetGuid()}/identities/detach", new { identity = "email:" + new string('a', 100_000) });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.True((await response.Content.ReadAsStringAsync()).Length < 2_000, "the refusal does not echo the key");
    }

    [Fact]
    public async Task A_reply_with_a_file_on_a_channel_that_cannot_carry_files_is_refused_not_sent_without_it()
    {
        var ticket = await OpenTicketAsync("files-on-api");
        using var agent = await App.AgentAsync("ann");
        using var form = new MultipartFormDataContent { { new StringContent("See the file."), "text" } };
        form.Add(new ByteArrayContent("%PDF-1.4 tiny"u8.ToArray()), "files", "a.pdf");

        var response = await agent.PostAsync($"/api/v1/tickets/{ticket}/reply", form);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Contains("Files can be sent on email and Telegram", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(await App.QueryAsync(db => db.Messages.AnyAsync(m => m.TicketNumber == ticket && m.Direction == Crm.Service.Contracts.MessageDirection.Outbound)));
    }
}
