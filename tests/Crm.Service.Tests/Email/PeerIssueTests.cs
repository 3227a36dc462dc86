using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>The email complaints of the peers that issue 16 cites, replayed against the real Postfix/Dovecot.</summary>
public sealed class PeerIssueTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;
    private CrmApp _app = null!;

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        _app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
        });
        using var admin = _app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private Task<Crm.Service.Grains.Records.MessageRecord> StoredAsync(string messageId) => Eventually.WaitForAsync(
        () => _app.QueryAsync(db => db.Messages.AsNoTracking().SingleOrDefaultAsync(m => m.ChannelAccountId == "support" && m.ExternalId!.StartsWith(messageId + "|from:"))),
        m => m is not null, what: $"message {messageId} stored")!;

    private Task<int> TicketCountAsync() => _app.QueryAsync(db => db.Tickets.CountAsync());

    /// <summary>Chatwoot #10028 "Conversations Duplicating Due to Different In-Reply-To": staff answer a customer from
    /// Outlook instead of the helpdesk; the customer's answer names Outlook's Message-ID in In-Reply-To, and Chatwoot,
    /// which matches on In-Reply-To only, opens a new conversation every round.</summary>
    [Fact]
    public async Task Chatwoot_10028_a_reply_to_a_staff_members_outlook_answer_stays_on_the_ticket()
    {
        await _mail.SendAsync(AutoAcknowledgementTests.Mail("cw10028-1@customer.example.test", "Order question", "Where is it?"));
        var first = await StoredAsync("cw10028-1@customer.example.test");

        // Staff B answered from Outlook (Message-ID unknown to us); the customer answers that, twice.
        var previous = "cw10028-1@customer.example.test";
        for (var round = 1; round <= 2; round++)
        {
            var outlookId = $"AM0PR{round}MB1234.outlook.example@company.example";
            var answer = AutoAcknowledgementTests.Mail($"cw10028-r{round}@customer.example.test", "RE: Order question", "Thanks, still waiting.");
            answer.InReplyTo = outlookId;
            answer.References.Add("cw10028-1@customer.example.test");
            if (previous != "cw10028-1@customer.example.test")
                answer.References.Add(previous);
            answer.References.Add(outlookId);
            await _mail.SendAsync(answer);
            Assert.Equal(first.TicketNumber, (await StoredAsync($"cw10028-r{round}@customer.example.test")).TicketNumber);
            previous = outlookId;
        }
        Assert.Equal(1, await TicketCountAsync());
    }

    /// <summary>Chatwoot #3868 "IMAP email reply creates new conversation every time": customer mail, helpdesk reply,
    /// customer reply → a new conversation each time (the helpdesk's Message-IDs were not recognised). Here the
    /// customer's client keeps only In-Reply-To (our reply's id), no References and no ticket tag.</summary>
    [Fact]
    public async Task Chatwoot_3868_every_reply_to_our_reply_continues_the_same_ticket()
    {
        await _mail.SendAsync(AutoAcknowledgementTests.Mail("cw3868-1@customer.example.test", "Login broken", "Cannot log in."));
        var first = await StoredAsync("cw3868-1@customer.example.test");
        using var agent = await _app.AgentAsync();
        for (var round = 1; round <= 3; round++)
        {
            var reply = await agent.PostAsJsonAsync($"/api/v1/tickets/{first.TicketNumber}/reply", new { text = $"Answer {round}" });
            Assert.Equal(HttpStatusCode.Created, reply.StatusCode);
            var replyId = (await reply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
            var ours = $"crm.{replyId:N}@example.test";
            await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Any(x => x.Message.MessageId == ours), what: $"reply {round} delivered");

            var answer = AutoAcknowledgementTests.Mail($"cw3868-r{round}@customer.example.test", "Re: Login broken", $"Still broken ({round}).");
            answer.InReplyTo = ours;
            await _mail.SendAsync(answer);
            Assert.Equal(first.TicketNumber, (await StoredAsync($"cw3868-r{round}@customer.example.test")).TicketNumber);
        }
        Assert.Equal(1, await TicketCountAsync());
    }
}
