using System.Net.Http.Json;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using MailKit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>Regression tests for the findings of the cold review of the email channel (review/email.md, F1–F12).</summary>
public sealed class EmailReviewTests : MailServerTests
{
    internal static MimeMessage Mail(string id, string subject, string from = MailServer.Customer, string text = "Hello")
    {
        var message = new MimeMessage { MessageId = id, Subject = subject };
        message.From.Add(new MailboxAddress("", from));
        message.To.Add(new MailboxAddress("", MailServer.Support));
        message.Body = new TextPart("plain") { Text = text };
        return message;
    }

    private async Task<CrmApp> AppAsync(Dictionary<string, string?>? settings = null, bool faultyStore = false)
    {
        var all = new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.100",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:00.500",
        };
        foreach (var (key, value) in settings ?? [])
            all[key] = value;
        var app = new CrmApp(_data.Path, all) { FaultyStore = faultyStore };
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
        return app;
    }

    private static Task<List<Crm.Service.Grains.Records.MessageRecord>> InboundAsync(CrmApp app, int count) => Eventually.WaitForAsync(
        () => app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound).OrderBy(m => m.CreatedAt).ToListAsync()),
        m => m.Count >= count, what: $"{count} inbound messages");

    /// <summary>F2: a store outage (hand-off and health writes both failing) must not end the reader for good.</summary>
    [Fact]
    public async Task F2_the_reader_survives_a_store_outage_and_reads_the_mail_that_arrived_during_it()
    {
        await using var app = await AppAsync(faultyStore: true);
        await _mail.SendAsync(Mail("before-outage@customer.test", "Before"));
        await InboundAsync(app, 1);

        app.Store.FailEveryCommitWhere(_ => true);
        var refusedBefore = app.Store.Refused;
        await _mail.SendAsync(Mail("during-outage@customer.test", "During"));
        // The reader tried the hand-off and its health write while the store was down.
        await Eventually.WaitForAsync(() => Task.FromResult(app.Store.Refused), r => r >= refusedBefore + 2, what: "failed commits during the outage");
        app.Store.FailEveryCommitWhere(null);

        var stored = await InboundAsync(app, 2);
        Assert.Equal(["before-outage@customer.test", "during-outage@customer.test"], stored.Select(m => Crm.Connectors.Email.EmailIds.MessageIdOf(m.ExternalId!)));
        await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword), m => m.Count == 2 && m.All(x => x.Flags.HasFlag(MessageFlags.Seen)), what: "both \\Seen");
    }

    /// <summary>F3: an oversize mail whose From the core refuses must not block the mails behind it.</summary>
    [Fact]
    public async Task F3_an_oversize_mail_with_a_sender_the_core_refuses_does_not_block_the_mailbox()
    {
        await using var app = await AppAsync(new() { ["Channels:Email:MaxMessageBytes"] = "2048" });
        var big = "From: x <a@-.com>\r\nTo: support@example.test\r\nSubject: big\r\nMessage-ID: <big@customer.test>\r\n\r\n" + new string('x', 3000) + "\r\n";
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, System.Text.Encoding.ASCII.GetBytes(big));
        await _mail.SendAsync(Mail("behind-big@customer.test", "Behind"));

        var stored = await InboundAsync(app, 2);
        Assert.Contains(stored, m => m.ExternalId!.StartsWith("behind-big@customer.test|", StringComparison.Ordinal));
        Assert.Contains(stored, m => m.Text!.Contains("over the", StringComparison.Ordinal) && m.Subject == "big");
    }

    /// <summary>F7: a refusal about the channel (disabled while a batch is handed off) acknowledges nothing and quarantines nothing.</summary>
    [Fact]
    public async Task F7_a_channel_refusal_during_the_hand_off_neither_quarantines_nor_acknowledges_the_mail()
    {
        var failed = 0;
        List<bool>? seenAtFailure = null;
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.100",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:00.500",
        }, services: services => services.AddSingleton<Crm.Connectors.Abstractions.IInboundHandOff>(provider => new RefusingHandOff(
            ActivatorUtilities.CreateInstance<Crm.Connectors.Abstractions.ConversationHandOff>(provider), async () =>
            {
                if (Interlocked.Increment(ref failed) != 1)
                    return false;
                seenAtFailure = [.. (await _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword)).Select(m => m.Flags.HasFlag(MessageFlags.Seen))];
                return true;
            })));
        await _mail.SendAsync(Mail("refused-once@customer.test", "Refused once"));
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();

        var stored = Assert.Single(await InboundAsync(app, 1));
        Assert.Equal("refused-once@customer.test", Crm.Connectors.Email.EmailIds.MessageIdOf(stored.ExternalId!));
        Assert.Equal([false], seenAtFailure);
        Assert.Equal(0, await app.QueryAsync(db => db.QuarantinedMail.CountAsync()));
    }

    private sealed class RefusingHandOff(Crm.Connectors.Abstractions.IInboundHandOff inner, Func<Task<bool>> refuse) : Crm.Connectors.Abstractions.IInboundHandOff
    {
        public async Task<IngestResult> HandOffAsync(InboundMessage message, CancellationToken cancellationToken = default)
        {
            if (await refuse())
                throw new DomainException(DomainErrorKind.Forbidden, "Channel 'support' is disabled; an admin can enable it.", "channelId");
            return await inner.HandOffAsync(message, cancellationToken);
        }
    }

    /// <summary>F6: the server answers 250 to DATA and then never answers QUIT (MailKit itself ignores a dropped
    /// connection at QUIT, but not the outbox's send timeout running out); the reply is sent once, not retried.</summary>
    [Fact]
    public async Task F6_a_reply_the_server_took_is_not_sent_again_when_quit_hangs()
    {
        await using var smtp = new QuitDroppingSmtpServer();
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?> { ["Outbox:SendTimeout"] = "00:00:05" });
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new
            {
                kind = "email",
                name = "Support",
                settings = new
                {
                    address = MailServer.Support,
                    imap = new { host = "127.0.0.1", port = _mail.ImapPort, security = "none", user = MailServer.Support, password = MailServer.SupportPassword },
                    smtp = new { host = "127.0.0.1", port = smtp.Port, security = "none" },
                },
            })).EnsureSuccessStatusCode();
        await _mail.SendAsync(Mail("quit@customer.test", "Question"));
        var ticket = (await InboundAsync(app, 1))[0].TicketNumber;

        using var agent = await app.AgentAsync();
        var reply = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = "Answer" });
        var id = (await reply.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("id").GetGuid();

        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Messages.Where(m => m.Id == id).Select(m => m.Delivery).SingleAsync()),
            d => d == DeliveryStatus.Sent, what: "the reply marked sent");
        Assert.Equal(1, smtp.Accepted);
    }

    /// <summary>Just enough SMTP for MailKit: accepts every mail with 250 and never answers QUIT.</summary>
    private sealed class QuitDroppingSmtpServer : IAsyncDisposable
    {
        private readonly System.Net.Sockets.TcpListener _listener = new(System.Net.IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private int _accepted;

        public QuitDroppingSmtpServer()
        {
            _listener.Start();
            _loop = Task.Run(AcceptAsync);
        }

        public int Port => ((System.Net.IPEndPoint)_listener.LocalEndpoint).Port;

        public int Accepted => Volatile.Read(ref _accepted);

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                System.Net.Sockets.TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                _ = Task.Run(() => ServeAsync(client));
            }
        }

        private async Task ServeAsync(System.Net.Sockets.TcpClient client)
        {
            using (client)
            {
                var stream = client.GetStream();
                var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
                var writer = new StreamWriter(stream, System.Text.Encoding.ASCII) { NewLine = "\r\n", AutoFlush = true };
                await writer.WriteLineAsync("220 quit-dropper ESMTP");
                while (await reader.ReadLineAsync() is { } line)
                {
                    var verb = line.Split(' ')[0].ToUpperInvariant();
                    switch (verb)
                    {
                        case "EHLO" or "HELO":
                            await writer.WriteLineAsync("250 quit-dropper");
                            break;
                        case "DATA":
                            await writer.WriteLineAsync("354 go ahead");
                            while (await reader.ReadLineAsync() is { } data && data != ".")
                            {
                            }
                            Interlocked.Increment(ref _accepted);
                            await writer.WriteLineAsync("250 2.0.0 queued");
                            break;
                        case "QUIT":
                            await Task.Delay(Timeout.Infinite, _stop.Token).ContinueWith(_ => { }, TaskScheduler.Default); // no "221"
                            return;
                        default:
                            await writer.WriteLineAsync("250 ok");
                            break;
                    }
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _loop;
        }
    }

    /// <summary>F1: a mail of 200,000 tiny parts (7 MB, under the byte limit) is not parsed into 200,000 objects: it is
    /// stored raw with a note, and the mail behind it is read.</summary>
    [Fact]
    public async Task F1_a_mail_with_a_huge_number_of_parts_is_stored_raw_without_parsing()
    {
        var raw = new System.Text.StringBuilder("From: a@customer.test\r\nTo: support@example.test\r\nSubject: parts\r\nMessage-ID: <parts@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
        for (var i = 0; i < 200_000; i++)
            raw.Append("--b\r\nContent-Type: application/x\r\n\r\nx\r\n");
        raw.Append("--b--\r\n");
        var bytes = System.Text.Encoding.ASCII.GetBytes(raw.ToString());
        Assert.True(Crm.Connectors.Email.MimeShape.Measure(bytes, 2000, 10_000).Parts > 2000);

        await using var app = await AppAsync();
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, bytes);
        await _mail.SendAsync(Mail("behind-parts@customer.test", "Behind"));

        var stored = await InboundAsync(app, 2);
        var parts = Assert.Single(stored, m => m.Subject == "parts");
        Assert.Contains("more than 2000 MIME parts", parts.Text);
        Assert.Equal(0, parts.AttachmentCount);
        Assert.Equal(bytes.LongLength, await app.QueryAsync(db => db.RawSources.Where(r => r.MessageId == parts.Id).Select(r => r.Length).SingleAsync()));
    }

    /// <summary>F8: an out-of-office answering our reply is stored on the ticket but does not reopen it; an automatic
    /// mail that answers nothing opens no ticket.</summary>
    [Fact]
    public async Task F8_an_auto_reply_to_a_resolved_ticket_does_not_reopen_it_and_unmatched_automatic_mail_opens_no_ticket()
    {
        await using var app = await AppAsync();
        await _mail.SendAsync(Mail("ooo-first@customer.test", "Printer"));
        var ticket = (await InboundAsync(app, 1))[0].TicketNumber;
        using var agent = await app.AgentAsync();
        var reply = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text = "Fixed, closing." });
        var replyId = (await reply.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("id").GetGuid();
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { status = "resolved" })).EnsureSuccessStatusCode();

        var ooo = Mail("ooo-auto@customer.test", "Automatic reply: Re: Printer");
        ooo.Headers.Add("Auto-Submitted", "auto-replied");
        ooo.InReplyTo = Crm.Connectors.Email.EmailIds.Outbound(replyId, "example.test");
        await _mail.SendAsync(ooo);
        var newsletter = Mail("news@lists.test", "Our newsletter", from: "news@lists.test");
        newsletter.Headers.Add("List-Id", "<news.lists.test>");
        await _mail.SendAsync(newsletter);
        await _mail.SendAsync(Mail("ooo-marker@other.test", "Marker", from: "other@example.test"));

        var stored = await InboundAsync(app, 3);
        Assert.Equal(3, stored.Count);
        Assert.Equal(ticket, Assert.Single(stored, m => m.Subject == "Automatic reply: Re: Printer").TicketNumber);
        Assert.Equal(TicketStatus.Resolved, await app.QueryAsync(db => db.Tickets.Where(t => t.Number == ticket).Select(t => t.Status).SingleAsync()));
        var quarantined = await Eventually.WaitForAsync(() => app.QueryAsync(db => db.QuarantinedMail.AsNoTracking().ToListAsync()), q => q.Count == 1, what: "the newsletter quarantined");
        Assert.Contains("List-Id", quarantined[0].Reason);
        Assert.DoesNotContain(stored, m => m.Subject == "Our newsletter");
    }
}
