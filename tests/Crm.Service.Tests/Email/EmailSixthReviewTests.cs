using System.Text;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Email;

/// <summary>Round six of the inbound email findings: the total of the address fields (LD4), uuencoded header groups
/// (ER13), huge To/Cc lists (N2), and sender-chosen ids that look like Telegram edits (CT13); through EmailIngest with
/// the real app, store and Postfix/Dovecot.</summary>
public sealed class EmailSixthReviewTests : MailServerTest
{
    private static byte[] Raw(string text) => Encoding.ASCII.GetBytes(text);

    /// <summary>One address field of about <paramref name="bytes"/> bytes: "Field: a0@x.test,\r\n a1@x.test, …".</summary>
    private static string AddressField(string field, string prefix, int bytes)
    {
        var builder = new StringBuilder(field).Append(": ");
        for (var i = 0; builder.Length < bytes; i++)
            builder.Append(i == 0 ? "" : ",\r\n ").Append(prefix).Append(i).Append("@example.test");
        return builder.Append("\r\n").ToString();
    }

    // LD4: 20 From fields of 250 KB each are each under MaxHeaderFieldBytes (256 KB) and 20 fields are far under
    // MaxHeaderLines, but MimeKit merges them into one list of ~250,000 addresses. The entity's address fields are
    // bounded together: the mail is handed off unparsed with a note, and its raw source is kept.
    [Fact]
    public async Task LD4_many_address_fields_each_under_the_field_bound_are_bounded_together_and_stored_unparsed()
    {
        var from = AddressField("From", "a", 250 * 1024);
        var raw = Raw(string.Concat(Enumerable.Repeat(from, 20)) + "To: support@example.test\r\nSubject: many froms\r\nMessage-ID: <ld4@example.test>\r\n\r\nHello\r\n");
        var counts = MimeShape.Measure(raw, 2000, 10_000, maxFieldBytes: 256 * 1024);
        Assert.Equal("From", counts.LongField);
        Assert.True(counts.LongInTotal);
        // A mail with a From, a To and a Cc of ordinary size passes.
        Assert.Null(MimeShape.Measure(Raw("From: a@example.test\r\nTo: b@example.test, c@example.test\r\nCc: d@example.test\r\nSubject: Hi\r\n\r\nHello\r\n"),
            2000, 10_000, maxFieldBytes: 256 * 1024).LongField);

        await using var app = App();
        await PutAccountAsync(app);
        var stored = Assert.IsType<MailOutcome.Stored>(await app.Services.GetRequiredService<EmailIngest>().ProcessAsync(Account(app), "INBOX", 1, 1, raw));
        var message = await app.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == stored.Result.MessageId));
        Assert.Contains("address header fields (up to From) are longer than 256 KB together", message.Text);
        Assert.Equal(raw.LongLength, await app.QueryAsync(db => db.RawSources.Where(r => r.MessageId == message.Id).Select(r => r.Length).SingleAsync()));
    }

    // IN1: the address total is over the whole mail: attached messages each with a From under the total must not
    // reset it (each entity has its own headers; MimeKit parses each attached message's addresses all the same).
    [Fact]
    public void IN1_address_fields_of_attached_messages_count_towards_one_total()
    {
        var builder = new StringBuilder("From: a@example.test\r\nTo: support@example.test\r\nSubject: many attached\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
        for (var i = 0; i < 25; i++)
            builder.Append("--b\r\nContent-Type: message/rfc822\r\n\r\n").Append(AddressField("From", $"m{i}x", 20 * 1024))
                .Append("Subject: attached ").Append(i).Append("\r\n\r\nbody\r\n");
        builder.Append("--b--\r\n");
        var counts = MimeShape.Measure(Raw(builder.ToString()), 2000, 10_000, maxFieldBytes: 256 * 1024);
        Assert.Equal("From", counts.LongField);
        Assert.True(counts.LongInTotal);
    }

    // N2 (the rest): a mail To and Cc thousands of addresses (under the bounds) is parsed and stored, links only its
    // sender as an identity (To and Cc link nobody), and keeps its raw source.
    [Fact]
    public async Task N2_a_mail_to_thousands_of_addresses_is_stored_links_one_identity_and_keeps_its_raw()
    {
        var raw = Raw("From: Carol <carol@customer.test>\r\n" + AddressField("To", "t", 100 * 1024) + AddressField("Cc", "c", 100 * 1024)
            + "Subject: all hands\r\nMessage-ID: <n2@customer.test>\r\n\r\nHello everyone\r\n");
        await using var app = App();
        await PutAccountAsync(app);
        var stored = Assert.IsType<MailOutcome.Stored>(await app.Services.GetRequiredService<EmailIngest>().ProcessAsync(Account(app), "INBOX", 1, 1, raw));
        var message = await app.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == stored.Result.MessageId));
        Assert.Equal("all hands", message.Subject);
        Assert.StartsWith("Hello everyone", message.Text);
        var identities = await app.QueryAsync(db => db.Identities.AsNoTracking().Select(i => i.Value).ToListAsync());
        Assert.Equal(["carol@customer.test"], identities);
        Assert.Equal(raw.LongLength, await app.QueryAsync(db => db.RawSources.Where(r => r.MessageId == message.Id).Select(r => r.Length).SingleAsync()));
    }

    /// <summary>The classic uuencoding (begin line, length-prefixed lines of 45 bytes, end line).</summary>
    internal static string UuEncode(byte[] data)
    {
        static char Char(int six) => six == 0 ? '`' : (char)(six + 32);
        var text = new StringBuilder("begin 644 status\r\n");
        for (var offset = 0; offset < data.Length; offset += 45)
        {
            var count = Math.Min(45, data.Length - offset);
            text.Append(Char(count));
            for (var i = 0; i < count; i += 3)
            {
                int b0 = data[offset + i], b1 = i + 1 < count ? data[offset + i + 1] : 0, b2 = i + 2 < count ? data[offset + i + 2] : 0;
                text.Append(Char(b0 >> 2)).Append(Char(((b0 & 3) << 4) | (b1 >> 4))).Append(Char(((b1 & 15) << 2) | (b2 >> 6))).Append(Char(b2 & 63));
            }
            text.Append("\r\n");
        }
        return text.Append("`\r\nend\r\n").ToString();
    }

    // ER13: a uuencoded header-group part was counted per line, but one line carries 45 bytes, up to ~7 short fields:
    // 15,000 fields passed as ~2,000. Every non-identity encoding now counts one field per three bytes.
    [Theory]
    [InlineData("x-uuencode")]
    [InlineData("uuencode")]
    public void ER13_the_fields_of_a_uuencoded_header_group_part_count_against_the_header_bound(string encoding)
    {
        var groups = new StringBuilder("Reporting-MTA: dns; mx.example.test\r\n\r\n");
        for (var i = 0; i < 15_000; i++)
            groups.Append("A: 1\r\n");
        var raw = Raw("From: MAILER-DAEMON@example.test\r\nTo: support@example.test\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
            + "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
            + $"--b\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{UuEncode(Encoding.ASCII.GetBytes(groups.ToString()))}\r\n--b--\r\n");
        Assert.True(MimeShape.Measure(raw, 2000, 10_000).Headers > 10_000);
    }

    // CT13: only the Telegram connector's exact edit id ("{chat}:{message}:edit:{16 hex}") is an edit; an email whose
    // sender-chosen Message-ID contains ":edit:" is not shown as an edit of another of its messages.
    [Fact]
    public void CT13_an_email_whose_message_id_contains_edit_is_no_edit_and_a_telegram_edit_is()
    {
        TimelineEntry Inbound(string externalId, ChannelKind kind = ChannelKind.Telegram) => new()
        {
            Id = Guid.NewGuid(), TicketNumber = 1, Direction = MessageDirection.Inbound, ExternalId = externalId, Author = "x", CreatedAt = DateTimeOffset.UnixEpoch,
            ChannelKind = kind,
        };
        // IN2: the exact Telegram shape on another channel (the API connector keeps the caller's id) is no edit either.
        Assert.Null(Inbound("1:2:edit:0123456789abcdef", ChannelKind.Api).EditOf);
        Assert.Null(Inbound("1:2:edit:0123456789abcdef", ChannelKind.Email).EditOf);
        Assert.Null(Inbound(EmailIds.DedupeKey("a@[x:edit:y]", "mallory@example.test")).EditOf);
        Assert.Null(Inbound(EmailIds.DedupeKey("1:2:edit:0123456789abcdef", "mallory@example.test")).EditOf);
        Assert.Null(Inbound("1:2:edit:0123456789abcdef|x").EditOf);
        Assert.Null(Inbound("abc:2:edit:0123456789abcdef").EditOf);
        Assert.Equal("-100123:7", Inbound("-100123:7:edit:0123456789abcdef").EditOf);
        Assert.Equal("424242:7", Inbound("424242:7:edit:" + Crm.Connectors.Telegram.TelegramIngest.VisibleHash(new global::Telegram.Bot.Types.Message { Text = "x" })).EditOf);
    }

    // FreeScout #4293 "How to paralyse Freescout for customer responses": one mail with very many PDF attachments could
    // not be imported, the fetch gave up every time, and no customer mail came in for two days. Here a mail past the
    // part bound is stored unparsed with its raw source, and the mail behind it is read as usual.
    [Fact]
    public async Task FreeScout_4293_a_mail_with_very_many_attachments_does_not_stop_the_mails_behind_it()
    {
        var many = new StringBuilder("From: Martin <martin@customer.test>\r\nTo: support@example.test\r\nSubject: all the invoices\r\nMessage-ID: <fs4293@customer.test>\r\n"
            + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n");
        for (var i = 0; i < 300; i++)
            many.Append($"--b\r\nContent-Type: application/pdf; name=\"invoice-{i}.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice-{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n");
        many.Append("--b--\r\n");
        await Mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, Raw(many.ToString()));
        await Mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(EmailReviewTests.Mail("next@customer.test", "Next question")));

        await using var app = App(new Dictionary<string, string?> { ["Channels:Email:MaxMimeParts"] = "100" });
        await PutAccountAsync(app);
        var stored = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound).ToListAsync()),
            m => m.Count >= 2, what: "both mails stored");
        var flagged = Assert.Single(stored, m => m.Subject == "all the invoices");
        Assert.Contains("more than 100 MIME parts", flagged.Text);
        Assert.Contains(stored, m => m.Subject == "Next question");
        Assert.True(await app.QueryAsync(db => db.RawSources.AnyAsync(r => r.MessageId == flagged.Id)));
        await Eventually.WaitForAsync(() => Mail.ReadAsync(MailServer.Support, MailServer.SupportPassword),
            m => m.Count == 2 && m.All(x => x.Flags.HasFlag(MailKit.MessageFlags.Seen)), what: "both acknowledged");
    }

    // Zammad #2444 "Subject-Recognition does also apply, if E-Mail-Address does not appear any where within the ticket":
    // anyone who wrote the ticket number into a subject was appended to that ticket. Here a tag is trusted only from
    // the ticket's customer: a stranger with the same tagged subject and no references gets a ticket of their own.
    [Fact]
    public async Task Zammad_2444_a_stranger_with_the_tagged_subject_does_not_join_the_ticket()
    {
        await using var app = App();
        await PutAccountAsync(app);
        var ingest = app.Services.GetRequiredService<EmailIngest>();
        var first = Assert.IsType<MailOutcome.Stored>(await ingest.ProcessAsync(Account(app), "INBOX", 1, 1,
            Raw("From: Carol <carol@customer.test>\r\nTo: support@example.test\r\nSubject: Printer broken\r\nMessage-ID: <z2444-1@customer.test>\r\n\r\nIt jams.\r\n")));
        var ticket = await app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.Id == first.Result.MessageId).Select(m => m.TicketNumber).SingleAsync());

        var stranger = Assert.IsType<MailOutcome.Stored>(await ingest.ProcessAsync(Account(app), "INBOX", 1, 2,
            Raw($"From: Mallory <mallory@elsewhere.test>\r\nTo: support@example.test\r\nSubject: Re: Printer broken [#{ticket}]\r\nMessage-ID: <z2444-2@elsewhere.test>\r\n\r\nMe too.\r\n")));
        var customer = Assert.IsType<MailOutcome.Stored>(await ingest.ProcessAsync(Account(app), "INBOX", 1, 3,
            Raw($"From: Carol <carol@customer.test>\r\nTo: support@example.test\r\nSubject: Re: Printer broken [#{ticket}]\r\nMessage-ID: <z2444-3@customer.test>\r\n\r\nStill jams.\r\n")));
        var tickets = await app.QueryAsync(db => db.Messages.AsNoTracking().ToDictionaryAsync(m => m.Id, m => m.TicketNumber));
        Assert.NotEqual(ticket, tickets[stranger.Result.MessageId]);
        Assert.Equal(ticket, tickets[customer.Result.MessageId]);
    }
}
