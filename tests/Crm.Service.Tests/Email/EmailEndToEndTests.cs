using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using MailKit;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>The email channel against a real Postfix and Dovecot: mail in, ticket, agent reply out, customer reply back.</summary>
public sealed class EmailEndToEndTests : IAsyncLifetime
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
            ["Channels:Email:PollInterval"] = "00:00:01",
        });
        using var admin = _app.Admin();
        var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private static MimeMessage CustomerMail(string messageId, string subject, string text, string from = MailServer.Customer)
    {
        var message = new MimeMessage { MessageId = messageId, Subject = subject };
        message.From.Add(new MailboxAddress("Carol Customer", from));
        message.To.Add(new MailboxAddress("Support", MailServer.Support));
        message.Body = new TextPart("plain") { Text = text };
        return message;
    }

    /// <summary>The stored message of a Message-ID (its dedupe key is the id qualified by the sender's hash).</summary>
    internal Task<Crm.Service.Grains.Records.MessageRecord> StoredAsync(string externalId) =>
        Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.AsNoTracking().SingleOrDefaultAsync(m => m.ChannelAccountId == "support" && (m.ExternalId == externalId || m.ExternalId!.StartsWith(externalId + "|from:")))),
            m => m is not null, what: $"message {externalId} stored")!;

    private Task<int> InboundCountAsync() => _app.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound));

    [Fact]
    public async Task A_customer_mail_becomes_a_ticket_the_reply_threads_back_and_the_customers_answer_lands_on_the_same_ticket()
    {
        await _mail.SendAsync(CustomerMail("first@customer.example.test", "Printer on fire", "It is burning."));
        var first = await StoredAsync("first@customer.example.test");
        Assert.Equal("Printer on fire", first.Subject);
        Assert.Contains("It is burning.", first.Text);

        using var agent = await _app.AgentAsync();
        var reply = await agent.PostAsJsonAsync($"/api/v1/tickets/{first.TicketNumber}/reply", new { text = "We are on it.", html = "<p>We are <b>on it</b>.</p>" });
        Assert.Equal(HttpStatusCode.Created, reply.StatusCode);
        var replyId = (await reply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        var received = (await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count == 1, what: "the reply in the customer's INBOX"))[0].Message;
        Assert.Equal($"crm.{replyId:N}@example.test", received.MessageId);
        Assert.Equal("first@customer.example.test", received.InReplyTo);
        Assert.Equal(["first@customer.example.test"], received.References);
        Assert.Equal(MailServer.Support, Assert.Single(received.From.Mailboxes).Address);
        Assert.Equal(MailServer.Support, Assert.Single(received.ReplyTo.Mailboxes).Address);
        Assert.Contains($"[#{first.TicketNumber}]", received.Subject);
        Assert.Contains("We are on it.", received.TextBody);
        Assert.Contains("<b>on it</b>", received.HtmlBody);
        await Eventually.WaitForAsync(() => _app.QueryAsync(db => db.Messages.Where(m => m.Id == replyId).Select(m => m.Delivery).SingleAsync()),
            d => d == DeliveryStatus.Sent, what: "reply marked sent");

        // The customer's client keeps only the headers (no ticket tag in the subject): the references find the ticket.
        var answer = CustomerMail("second@customer.example.test", "Re: Printer on fire", "Thanks!\n\n> We are on it.");
        answer.InReplyTo = received.MessageId;
        answer.References.Add("first@customer.example.test");
        answer.References.Add(received.MessageId!);
        await _mail.SendAsync(answer);
        var second = await StoredAsync("second@customer.example.test");
        Assert.Equal(first.TicketNumber, second.TicketNumber);
        Assert.Equal(first.ConversationId, second.ConversationId);

        // Both mails were acknowledged on the server after they were stored.
        var inbox = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword),
            m => m.Count == 2 && m.All(x => x.Flags.HasFlag(MessageFlags.Seen)), what: "both mails \\Seen");
        Assert.Equal(2, inbox.Count);
    }

    [Fact]
    public async Task A_ticket_tag_is_trusted_from_the_tickets_customer_only()
    {
        await _mail.SendAsync(CustomerMail("tag-1@customer.example.test", "Invoice wrong", "Please fix."));
        var first = await StoredAsync("tag-1@customer.example.test");

        await _mail.SendAsync(CustomerMail("tag-2@customer.example.test", $"About [#{first.TicketNumber}]", "Any news?"));
        Assert.Equal(first.TicketNumber, (await StoredAsync("tag-2@customer.example.test")).TicketNumber);

        // Someone else naming the ticket gets a ticket of their own, never a seat in Carol's.
        await _mail.SendAsync(CustomerMail("tag-3@stranger.example.test", $"About [#{first.TicketNumber}]", "Let me in.", from: "mallory@example.test"));
        Assert.NotEqual(first.TicketNumber, (await StoredAsync("tag-3@stranger.example.test")).TicketNumber);
    }

    [Fact]
    public async Task A_redelivered_mail_after_a_uidvalidity_change_never_duplicates_or_reopens_a_ticket()
    {
        await _mail.SendAsync(CustomerMail("redeliver@customer.example.test", "Broken login", "Cannot log in."));
        var first = await StoredAsync("redeliver@customer.example.test");
        using var agent = await _app.AgentAsync();
        Assert.Equal(HttpStatusCode.OK, (await agent.PatchAsJsonAsync($"/api/v1/tickets/{first.TicketNumber}", new { status = "resolved" })).StatusCode);
        var before = await _app.QueryAsync(db => db.Tickets.AsNoTracking().SingleAsync(t => t.Number == first.TicketNumber));

        // The server forgets who it told what (UIDVALIDITY changes) and the mail arrives again under a new UID.
        await _app.QueryAsync(async db =>
        {
            var cursor = await db.MailboxCursors.SingleAsync(c => c.ChannelAccountId == "support");
            cursor.UidValidity += 1;
            return await db.SaveChangesAsync();
        });
        var raw = (await _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword))[0].Message;
        using (var buffer = new MemoryStream())
        {
            await raw.WriteToAsync(buffer);
            await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, buffer.ToArray());
        }
        // A fresh mail behind it shows the reader went past the redelivery.
        await _mail.SendAsync(CustomerMail("after@customer.example.test", "Other topic", "Something else."));
        await StoredAsync("after@customer.example.test");

        Assert.Equal(2, await InboundCountAsync());
        var after = await _app.QueryAsync(db => db.Tickets.AsNoTracking().SingleAsync(t => t.Number == first.TicketNumber));
        Assert.Equal(TicketStatus.Resolved, after.Status);
        Assert.Equal(before.UpdatedAt, after.UpdatedAt);
    }

    [Fact]
    public async Task Mail_without_a_sender_is_quarantined_and_does_not_block_the_mails_behind_it()
    {
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, "Subject: no sender\r\nMessage-ID: <nosender@x.example.test>\r\n\r\nHello\r\n"u8.ToArray());
        await _mail.SendAsync(CustomerMail("behind@customer.example.test", "Next", "Still here."));
        await StoredAsync("behind@customer.example.test");
        var quarantined = await Eventually.WaitForAsync(() => _app.QueryAsync(db => db.QuarantinedMail.AsNoTracking().ToListAsync()), q => q.Count == 1, what: "the quarantined mail");
        Assert.Contains("From", quarantined[0].Reason);
        Assert.Equal(1, await InboundCountAsync());
    }

    [Fact]
    public async Task A_changed_account_restarts_its_reader_without_a_restart_of_the_host()
    {
        await _mail.SendAsync(CustomerMail("before-change@customer.example.test", "One", "First."));
        await StoredAsync("before-change@customer.example.test");

        using (var admin = _app.Admin())
        {
            var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings(afterProcessing: "move:Processed") });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        await _mail.SendAsync(CustomerMail("after-change@customer.example.test", "Two", "Second."));
        await StoredAsync("after-change@customer.example.test");

        var processed = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword, "Processed"), m => m.Count == 1, what: "the mail moved to Processed");
        Assert.Equal("after-change@customer.example.test", processed[0].Message.MessageId);
        var inbox = await _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword);
        Assert.Equal(["before-change@customer.example.test"], inbox.Select(m => m.Message.MessageId));

        using (var admin = _app.Admin())
            Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", enabled = false, settings = _mail.ChannelSettings() })).StatusCode);
        using (var admin = _app.Admin())
        {
            var view = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support");
            Assert.True(view.GetProperty("lastSuccessAt").ValueKind == JsonValueKind.String, "the reader reported its logins as health");
        }
    }

    [Fact]
    public async Task A_bounce_of_a_reply_marks_it_failed_and_opens_no_ticket()
    {
        await _mail.SendAsync(CustomerMail("bounce-1@customer.example.test", "Hello", "Hi."));
        var first = await StoredAsync("bounce-1@customer.example.test");
        using var agent = await _app.AgentAsync();
        var reply = await agent.PostAsJsonAsync($"/api/v1/tickets/{first.TicketNumber}/reply", new { text = "Answer" });
        var replyId = (await reply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        await Eventually.WaitForAsync(() => _app.QueryAsync(db => db.Messages.Where(m => m.Id == replyId).Select(m => m.Delivery).SingleAsync()),
            d => d == DeliveryStatus.Sent, what: "reply sent");

        var report = new MimeMessage { Subject = "Undelivered Mail Returned to Sender", MessageId = "bounce-report@mail.example.test" };
        report.From.Add(new MailboxAddress("Mail Delivery System", "MAILER-DAEMON@mail.example.test"));
        report.To.Add(new MailboxAddress("", MailServer.Support));
        var dsn = new MultipartReport("delivery-status");
        dsn.Add(new TextPart("plain") { Text = "This is the mail system. Your message could not be delivered." });
        var status = new MessageDeliveryStatus();
        using (var fields = new MemoryStream("Reporting-MTA: dns; mail.example.test\r\n\r\nFinal-Recipient: rfc822; customer@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\r\n"u8.ToArray()))
            status.Content = new MimeContent(new MemoryStream(fields.ToArray()));
        dsn.Add(status);
        var returned = new TextPart("rfc822-headers") { Text = $"Message-ID: <crm.{replyId:N}@example.test>\r\nSubject: Re: Hello\r\n" };
        dsn.Add(returned);
        report.Body = dsn;
        await _mail.SendAsync(report);

        var failed = await Eventually.WaitForAsync(() => _app.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == replyId)),
            m => m.Delivery == DeliveryStatus.Failed, what: "reply marked failed");
        Assert.Contains("550 5.1.1", failed.DeliveryError);
        Assert.Equal(1, await InboundCountAsync());
        Assert.Single(await _app.QueryAsync(db => db.Tickets.ToListAsync()));
    }
}
