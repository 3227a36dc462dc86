using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Tests.Support;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>The acknowledgement of a new ticket against the real Postfix/Dovecot: once per ticket, in the customer's
/// language, marked automatic, never to machine mail, capped per recipient in the store, and loop-safe against
/// another helpdesk's auto-replies.</summary>
public sealed class AutoAcknowledgementTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;
    private CrmApp _app = null!;

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        _app = App();
        await PutAccountAsync(_app, new JsonObject { ["enabled"] = true });
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private CrmApp App() => new(_data.Path, new Dictionary<string, string?>
    {
        ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
        ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
        ["Channels:Email:PollInterval"] = "00:00:01",
        ["Channels:Email:MaxAutomaticMailsPerRecipient"] = "3",
    });

    private async Task PutAccountAsync(CrmApp app, JsonObject acknowledgement)
    {
        var settings = JsonSerializer.SerializeToNode(_mail.ChannelSettings())!.AsObject();
        // The test mails carry the receiving server's dmarc=pass (see Mail), so the template may echo subject and name.
        acknowledgement["trustedAuthServId"] ??= "mx.example.test";
        settings["autoAcknowledgement"] = acknowledgement;
        using var admin = app.Admin();
        var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings });
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }

    internal static MimeMessage Mail(string messageId, string subject, string text, string from = MailServer.Customer, string name = "Carol Customer")
    {
        var message = new MimeMessage { MessageId = messageId, Subject = subject };
        message.Headers.Add(HeaderId.AuthenticationResults, $"mx.example.test; dmarc=pass header.from={from[(from.LastIndexOf('@') + 1)..]}");
        message.From.Add(new MailboxAddress(name, from));
        message.To.Add(new MailboxAddress("Support", MailServer.Support));
        message.Body = new TextPart("plain") { Text = text };
        return message;
    }

    private Task<Crm.Service.Grains.Records.MessageRecord> StoredAsync(CrmApp app, string messageId) => Eventually.WaitForAsync(
        () => app.QueryAsync(db => db.Messages.AsNoTracking().SingleOrDefaultAsync(m => m.ChannelAccountId == "support" && m.ExternalId!.StartsWith(messageId + "|from:"))),
        m => m is not null, TimeSpan.FromSeconds(90), $"message {messageId} stored")!;

    private Task<List<AutomaticMailRecord>> AutomaticMailAsync(CrmApp app) => app.QueryAsync(db => db.AutomaticMail.AsNoTracking().OrderBy(a => a.CreatedAtMs).ToListAsync());

    private Task<List<(uint Uid, MessageFlags Flags, MimeMessage Message)>> CustomerInboxAsync(int count) =>
        Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count >= count, TimeSpan.FromSeconds(90), $"{count} mail(s) in the customer's INBOX");

    [Fact]
    public async Task A_new_ticket_is_acknowledged_once_with_its_number_marked_auto_replied_and_threaded()
    {
        await _mail.SendAsync(Mail("ack-1@customer.example.test", "Printer on fire", "It is burning."));
        var first = await StoredAsync(_app, "ack-1@customer.example.test");

        var ack = Assert.Single(await CustomerInboxAsync(1)).Message;
        Assert.Equal($"We received your request [#{first.TicketNumber}]: Printer on fire", ack.Subject);
        Assert.Contains($"ticket #{first.TicketNumber}", ack.TextBody);
        Assert.Contains("Hello Carol Customer,", ack.TextBody);
        Assert.Equal("auto-replied", ack.Headers["Auto-Submitted"]);
        Assert.Equal("ack-1@customer.example.test", ack.InReplyTo);
        Assert.Equal(MailServer.Support, Assert.Single(ack.From.Mailboxes).Address);

        // The customer answers on the thread (a reply to the acknowledgement): same ticket, no second acknowledgement.
        var answer = Mail("ack-2@customer.example.test", "Re: " + ack.Subject, "More details.");
        answer.InReplyTo = ack.MessageId;
        answer.References.Add("ack-1@customer.example.test");
        answer.References.Add(ack.MessageId!);
        await _mail.SendAsync(answer);
        Assert.Equal(first.TicketNumber, (await StoredAsync(_app, "ack-2@customer.example.test")).TicketNumber);
        // A second new ticket shows the sender went past the answer; by then only two acknowledgements exist in all.
        await _mail.SendAsync(Mail("ack-3@customer.example.test", "Another thing", "Unrelated."));
        var third = await StoredAsync(_app, "ack-3@customer.example.test");
        await CustomerInboxAsync(2);
        // Postfix can deliver an acknowledgement before its row commits as sent.
        var rows = await Eventually.WaitForAsync(() => AutomaticMailAsync(_app),
            r => r.Count >= 2 && r.All(x => x.State == AutomaticMailRecord.Sent), what: "both acknowledgements recorded sent");
        Assert.Equal([first.TicketNumber, third.TicketNumber], rows.Select(r => r.TicketNumber));
        Assert.All(rows, r => Assert.Equal(AutomaticMailRecord.Sent, r.State));
        Assert.Equal(2, (await _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword)).Count);
    }

    [Fact]
    public async Task A_customer_writing_chinese_gets_the_chinese_acknowledgement()
    {
        await _mail.SendAsync(Mail("zh-1@customer.example.test", "打印机坏了", "打印机无法打印，请帮忙。", name: "王小明"));
        var stored = await StoredAsync(_app, "zh-1@customer.example.test");
        var ack = Assert.Single(await CustomerInboxAsync(1)).Message;
        Assert.Equal($"我们已收到您的请求 [#{stored.TicketNumber}]：打印机坏了", ack.Subject);
        Assert.Contains($"工单编号为 #{stored.TicketNumber}", ack.TextBody);
        Assert.Contains("尊敬的王小明", ack.TextBody);
    }

    [Fact]
    public async Task A_template_of_the_account_is_used_and_must_name_the_ticket()
    {
        using (var admin = _app.Admin())
        {
            var settings = JsonSerializer.SerializeToNode(_mail.ChannelSettings())!.AsObject();
            settings["autoAcknowledgement"] = new JsonObject { ["enabled"] = true, ["subject"] = "Thanks!" };
            var refused = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings });
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
            Assert.Contains("autoAcknowledgement.subject", await refused.Content.ReadAsStringAsync());
        }
        await PutAccountAsync(_app, new JsonObject { ["enabled"] = true, ["language"] = "en", ["subject"] = "Case {{ticket}} [#{{ticket}}]", ["body"] = "Dear {{name}}, case {{ticket}} about {{subject}} is open." });
        await _mail.SendAsync(Mail("tpl-1@customer.example.test", "Broken", "Help."));
        var stored = await StoredAsync(_app, "tpl-1@customer.example.test");
        var ack = Assert.Single(await CustomerInboxAsync(1)).Message;
        Assert.Equal($"Case {stored.TicketNumber} [#{stored.TicketNumber}]", ack.Subject);
        Assert.Equal($"Dear Carol Customer, case {stored.TicketNumber} about Broken is open.", ack.TextBody?.Trim());
    }

    [Fact]
    public async Task Machine_written_list_and_bounce_mail_and_our_own_address_get_no_acknowledgement()
    {
        var outOfOffice = Mail("auto-1@customer.example.test", "Out of office", "Away.");
        outOfOffice.Headers.Add("Auto-Submitted", "auto-replied");
        var list = Mail("list-1@customer.example.test", "Newsletter", "News.");
        list.Headers.Add("List-Id", "<news.example.test>");
        var bulk = Mail("bulk-1@customer.example.test", "Offer", "Buy.");
        bulk.Headers.Add("Precedence", "bulk");
        var daemon = Mail("daemon-1@customer.example.test", "Delivery Status Notification", "Could not deliver.", from: "mailer-daemon@example.test");
        var own = Mail("own-1@customer.example.test", "From ourselves", "Loop?", from: MailServer.Support);
        foreach (var mail in (MimeMessage[])[outOfOffice, list, bulk, daemon, own])
            await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(mail));
        // A person writing behind them shows the reader passed them all.
        await _mail.SendAsync(Mail("person-1@customer.example.test", "Real question", "Hello?"));
        var person = await StoredAsync(_app, "person-1@customer.example.test");

        await CustomerInboxAsync(1);
        var rows = await AutomaticMailAsync(_app);
        Assert.Equal([person.TicketNumber], rows.Select(r => r.TicketNumber));
        // Other senders are other lanes: the person's mail being stored does not mean theirs are quarantined yet.
        await Eventually.WaitForAsync(() => _app.QueryAsync(db => db.QuarantinedMail.CountAsync()), n => n >= 5, what: "the five machine mails quarantined");
        Assert.Equal(5, await _app.QueryAsync(db => db.QuarantinedMail.CountAsync()));
    }

    [Fact]
    public async Task The_per_recipient_cap_is_kept_in_the_store_and_survives_a_restart()
    {
        for (var i = 1; i <= 4; i++)
            await _mail.SendAsync(Mail($"cap-{i}@customer.example.test", $"Question {i}", "?"));
        for (var i = 1; i <= 4; i++)
            await StoredAsync(_app, $"cap-{i}@customer.example.test");
        var rows = await Eventually.WaitForAsync(() => AutomaticMailAsync(_app), r => r.Count == 4 && r.Count(x => x.State == AutomaticMailRecord.Sent) == 3, TimeSpan.FromSeconds(90), "three acknowledgements sent and the fourth claimed");
        Assert.Equal(AutomaticMailRecord.Suppressed, Assert.Single(rows, r => r.State != AutomaticMailRecord.Sent).State);

        await _app.DisposeAsync();
        _app = App();
        await PutAccountAsync(_app, new JsonObject { ["enabled"] = true });
        await _mail.SendAsync(Mail("cap-5@customer.example.test", "Question 5", "?"));
        var fifth = await StoredAsync(_app, "cap-5@customer.example.test");
        var after = await Eventually.WaitForAsync(() => AutomaticMailAsync(_app), r => r.Any(x => x.TicketNumber == fifth.TicketNumber), what: "the fifth ticket's claim");
        Assert.Equal(AutomaticMailRecord.Suppressed, after.Single(r => r.TicketNumber == fifth.TicketNumber).State);
        Assert.Equal(3, (await CustomerInboxAsync(3)).Count);

        // Another recipient is not affected by Carol's cap.
        var store = _app.Services.GetRequiredService<IAutomaticMailStore>();
        Assert.Equal(AutomaticMailClaim.Claimed, await store.ClaimAsync(new AutomaticMail(Guid.NewGuid(), "no-such-account", "test", 1, "dave@example.test", null, null, null, "en", DateTimeOffset.UtcNow), 3, 100, TimeSpan.FromHours(1)));
        Assert.Equal(AutomaticMailClaim.AlreadyClaimed, await store.ClaimAsync(new AutomaticMail(Guid.NewGuid(), "no-such-account", "test", 1, "dave@example.test", null, null, null, "en", DateTimeOffset.UtcNow), 3, 100, TimeSpan.FromHours(1)));
        // The window rolls: an hour later Carol may be acknowledged again.
        Assert.Equal(AutomaticMailClaim.Claimed, await store.ClaimAsync(new AutomaticMail(Guid.NewGuid(), "no-such-account", "test", 2, MailServer.Customer.ToUpperInvariant(), null, null, null, "en", DateTimeOffset.UtcNow.AddHours(2)), 3, 100, TimeSpan.FromHours(1)));
    }

    /// <summary>Another helpdesk on the customer's side answers every mail it gets with an acknowledgement of its own.</summary>
    private async Task PeerHelpdeskAsync(bool marksAutoReplies, CancellationToken stop)
    {
        var answered = new HashSet<string>();
        var n = 0;
        while (!stop.IsCancellationRequested)
        {
            foreach (var (_, _, mail) in await _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword))
            {
                if (!answered.Add(mail.MessageId!))
                    continue;
                n++;
                MimeMessage reply;
                if (marksAutoReplies)
                {
                    // A well-behaved one: RFC 3834 headers, threaded to what it answers.
                    reply = Mail($"peer-{n}@customer.example.test", $"[Ticket#{900 + n}] Re: {mail.Subject}", "We got your mail and opened a ticket.");
                    reply.Headers.Add("Auto-Submitted", "auto-replied");
                    reply.InReplyTo = mail.MessageId;
                    reply.References.Add(mail.MessageId!);
                }
                else
                    // A badly behaved one: no automatic headers, no references, a subject of its own.
                    reply = Mail($"peer-{n}@customer.example.test", $"Ticket {900 + n} created", "We got your mail and opened a ticket.");
                using var client = new SmtpClient();
                await client.ConnectAsync("127.0.0.1", _mail.SmtpPort, SecureSocketOptions.None, stop);
                await client.SendAsync(reply, stop);
                await client.DisconnectAsync(true, stop);
            }
            await Task.Delay(200, stop).ContinueWith(_ => { });
        }
    }

    [Fact]
    public async Task Loop_safe_against_a_helpdesk_that_marks_its_auto_replies()
    {
        using var stop = new CancellationTokenSource();
        var peer = Task.Run(() => PeerHelpdeskAsync(marksAutoReplies: true, stop.Token));
        await _mail.SendAsync(Mail("loop-1@customer.example.test", "Hello", "Hi."));
        var first = await StoredAsync(_app, "loop-1@customer.example.test");
        // Its auto-reply lands on our ticket as automatic mail: no new ticket, no acknowledgement of it.
        var peerReply = await StoredAsync(_app, "peer-1@customer.example.test");
        Assert.Equal(first.TicketNumber, peerReply.TicketNumber);
        // A later mail of the customer's is acknowledged and answered by the peer too: only the tickets' mails were acknowledged.
        await _mail.SendAsync(Mail("loop-2@customer.example.test", "Other", "Hi again."));
        var second = await StoredAsync(_app, "loop-2@customer.example.test");
        await StoredAsync(_app, "peer-2@customer.example.test");
        await stop.CancelAsync();
        await peer;
        Assert.Equal([first.TicketNumber, second.TicketNumber], (await AutomaticMailAsync(_app)).Select(r => r.TicketNumber));
        Assert.Equal(2, await _app.QueryAsync(db => db.Tickets.CountAsync()));
        var ticket = await _app.QueryAsync(db => db.Tickets.AsNoTracking().SingleAsync(t => t.Number == first.TicketNumber));
        Assert.Equal(TicketStatus.New, ticket.Status);
    }

    [Fact]
    public async Task Loop_safe_against_a_helpdesk_that_does_not_mark_its_auto_replies()
    {
        using var stop = new CancellationTokenSource();
        var peer = Task.Run(() => PeerHelpdeskAsync(marksAutoReplies: false, stop.Token));
        await _mail.SendAsync(Mail("bad-loop@customer.example.test", "Hello", "Hi."));
        // Every auto-reply looks like a person opening a ticket, each is acknowledged, until the cap (3) stops it.
        var rows = await Eventually.WaitForAsync(() => AutomaticMailAsync(_app), r => r.Any(x => x.State == AutomaticMailRecord.Suppressed)
            && r.Where(x => x.State != AutomaticMailRecord.Suppressed).All(x => x.State == AutomaticMailRecord.Sent), TimeSpan.FromSeconds(60), what: "the cap to stop the loop");
        Assert.Equal(3, rows.Count(r => r.State == AutomaticMailRecord.Sent));
        await stop.CancelAsync();
        await peer;
        Assert.Equal(3, (await _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword)).Count);
        Assert.Equal(4, await _app.QueryAsync(db => db.Tickets.CountAsync()));
    }
}
