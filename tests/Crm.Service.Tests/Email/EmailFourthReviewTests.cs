using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>The findings of the email third pass's cold review (H1–H3, M1, M2) and the open ones of the second (G6–G10),
/// each reproduced against the fix with the real Dovecot/Postfix and app.</summary>
public sealed class EmailFourthReviewTests : MailServerTests
{
    private CrmApp App(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
            ["Channels:Email:PollInterval"] = "00:00:01",
            ["Channels:Email:MaxAutomaticMailsPerRecipient"] = "3",
        };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
            settings[key] = value;
        return new CrmApp(_data.Path, settings);
    }

    private async Task PutAccountAsync(CrmApp app, Action<JsonObject>? change = null, bool enabled = true)
    {
        var settings = JsonSerializer.SerializeToNode(_mail.ChannelSettings())!.AsObject();
        change?.Invoke(settings);
        using var admin = app.Admin();
        var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", enabled, settings });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    private static ChannelAccount Account(CrmApp app) => app.Services.GetRequiredService<IChannelAccounts>().Find("support")!;

    private static Task<MailOutcome> ProcessAsync(CrmApp app, byte[] raw, uint uid = 1) =>
        app.Services.GetRequiredService<EmailIngest>().ProcessAsync(Account(app), "INBOX", 1, uid, raw);

    private static byte[] Raw(string text) => Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\r\n"));

    private Task<List<AutomaticMailRecord>> AutomaticMailAsync(CrmApp app) => app.QueryAsync(db => db.AutomaticMail.AsNoTracking().OrderBy(a => a.CreatedAtMs).ToListAsync());

    /// <summary>H1: ten spoofed mails "from" one victim spelled ten ways (+tags), each with a phishing subject and name:
    /// the cap counts the victim once, and no acknowledgement carries the stranger's words.</summary>
    [Fact]
    public async Task H1_spoofed_senders_get_at_most_the_cap_and_no_acknowledgement_echoes_their_text()
    {
        await using var app = App();
        await PutAccountAsync(app, s => s["autoAcknowledgement"] = new JsonObject { ["enabled"] = true, ["language"] = "en" });
        for (var i = 0; i < 10; i++)
        {
            var outcome = await ProcessAsync(app, Raw($"""
                From: "Your account is suspended - verify at http://evil.example/x" <victim+{i}@customer.example.test>
                To: support@example.test
                Subject: URGENT: pay invoice at http://evil.example/{i}
                Message-ID: <relay-{i}@customer.example.test>

                Pay now.
                """), (uint)i + 1);
            Assert.IsType<MailOutcome.Stored>(outcome);
        }
        var rows = await AutomaticMailAsync(app);
        Assert.Equal(10, rows.Count);
        Assert.Equal(3, rows.Count(r => r.State != AutomaticMailRecord.Suppressed));
        Assert.All(rows, r => Assert.Equal("victim@customer.example.test", r.RecipientKey));
        var settings = Account(app).SettingsAs<EmailChannelSettings>()!;
        foreach (var row in rows)
        {
            Assert.Null(row.Subject);
            Assert.Null(row.RecipientName);
            var sent = AutoAcknowledgements.Compose(new AutomaticMail(row.Id, row.ChannelAccountId, row.Kind, row.TicketNumber, row.Recipient, row.RecipientName, row.InReplyTo, row.Subject, row.Language,
                DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAtMs)), settings, settings.AutoAcknowledgement!);
            Assert.DoesNotContain("evil", sent.Subject + sent.TextBody + sent.To, StringComparison.OrdinalIgnoreCase);
            Assert.Equal($"We received your request [#{row.TicketNumber}]", sent.Subject);
        }
    }

    /// <summary>H1: a sender the receiving server authenticated (its trusted Authentication-Results says dmarc=pass) gets
    /// its subject and name back; Gmail's dotted spellings count as one recipient; the account's own cap bounds the total.</summary>
    [Fact]
    public async Task H1_an_authenticated_sender_sees_its_subject_and_the_account_cap_bounds_all_recipients()
    {
        await using var app = App(new Dictionary<string, string?> { ["Channels:Email:MaxAutomaticMailsPerAccount"] = "4" });
        await PutAccountAsync(app, s => s["autoAcknowledgement"] = new JsonObject { ["enabled"] = true, ["language"] = "en", ["trustedAuthServId"] = "mx.example.test" });
        await ProcessAsync(app, Raw("""
            Authentication-Results: mx.example.test; dmarc=pass header.from=customer.example.test
            From: Carol <carol@customer.example.test>
            To: support@example.test
            Subject: Printer on fire
            Message-ID: <auth-1@customer.example.test>

            It burns.
            """));
        var row = Assert.Single(await AutomaticMailAsync(app));
        Assert.Equal("Printer on fire", row.Subject);
        Assert.Equal("Carol", row.RecipientName);

        Assert.Equal("victim@gmail.com", SqliteMailboxStore.RecipientKey("Vi.Ct.Im+news@GoogleMail.com"));
        for (var i = 0; i < 6; i++)
            await ProcessAsync(app, Raw($"""
                From: someone{i}@other.example.test
                To: support@example.test
                Subject: Question {i}
                Message-ID: <many-{i}@other.example.test>

                Hello.
                """), (uint)i + 2);
        var rows = await AutomaticMailAsync(app);
        Assert.Equal(7, rows.Count);
        Assert.Equal(4, rows.Count(r => r.State != AutomaticMailRecord.Suppressed));
        Assert.Contains(rows, r => r.Error?.Contains("channel support sent 4", StringComparison.Ordinal) == true);
    }

    /// <summary>H2: a stranger's mail with <c>Message-ID: &lt;.&gt;</c> (MimeKit refuses it in In-Reply-To) and a row whose
    /// sending throws must not stop the acknowledgements behind them.</summary>
    [Fact]
    public async Task H2_an_unsendable_message_id_does_not_stop_the_acknowledgements_behind_it()
    {
        await using var app = App();
        await PutAccountAsync(app, s => s["autoAcknowledgement"] = new JsonObject { ["enabled"] = true, ["language"] = "en" });
        // A row claimed with a bad id (as before the fix) at the head of the queue: the sender must get past it.
        var store = app.Services.GetRequiredService<IAutomaticMailStore>();
        Assert.Equal(AutomaticMailClaim.Claimed, await store.ClaimAsync(new AutomaticMail(Guid.CreateVersion7(DateTimeOffset.UtcNow.AddMinutes(-1)), "support", AutoAcknowledgements.Kind, 999_999,
            "dave@customer.example.test", null, ".", null, "en", DateTimeOffset.UtcNow.AddMinutes(-1)), 3, 100, TimeSpan.FromHours(1)));

        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, Raw("""
            From: Carol <customer@example.test>
            To: support@example.test
            Subject: dot id
            Message-ID: <.>

            Hello.
            """));
        var behind = AutoAcknowledgementTests.Mail("behind-dot@example.test", "Behind the dot", "Hello again.");
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(behind));

        var inbox = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count >= 2,
            TimeSpan.FromSeconds(90), "both acknowledgements in the customer's INBOX");
        Assert.Contains(inbox, m => m.Message.InReplyTo == "behind-dot@example.test");
        Assert.Contains(inbox, m => m.Message.InReplyTo is null);
        var head = await Eventually.WaitForAsync(() => app.QueryAsync(db => db.AutomaticMail.AsNoTracking().SingleAsync(a => a.TicketNumber == 999_999)),
            r => r.Attempts > 0, TimeSpan.FromSeconds(60), "the bad row tried");
        Assert.Contains("Invalid", head.Error);
    }

    /// <summary>H3: a header flood inside an attached message (message/rfc822) is counted like one at the top.</summary>
    [Fact]
    public async Task H3_a_header_flood_in_an_attached_message_is_stored_raw_not_parsed()
    {
        var raw = Encoding.ASCII.GetBytes("From: a@x.example.test\r\nTo: support@example.test\r\nSubject: hi\r\nMessage-ID: <1@x.example.test>\r\nContent-Type: message/rfc822\r\n\r\n"
            + string.Concat(Enumerable.Repeat("a:\r\n", 1_000_000)) + "From: b@y.example.test\r\n\r\nbody\r\n");
        Assert.True(MimeShape.Measure(raw, 2000, 10_000).Headers > 10_000);
        var digest = Encoding.ASCII.GetBytes("From: a@x.example.test\r\nSubject: d\r\nContent-Type: multipart/digest; boundary=\"b\"\r\n\r\n--b\r\n\r\n"
            + string.Concat(Enumerable.Repeat("a:\r\n", 20_000)) + "\r\nbody\r\n--b--\r\n");
        Assert.True(MimeShape.Measure(digest, 2000, 10_000).Headers > 10_000);

        await using var app = App();
        await PutAccountAsync(app);
        var stored = Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, raw));
        var message = await app.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == stored.Result.MessageId));
        Assert.Contains("more than 10000 header fields", message.Text);
    }

    /// <summary>M1: an Authentication-Results header of the trusted server that MimeKit cannot parse ends the check; the
    /// stranger's own header below it (claiming the same id) is never read, and two headers of the trusted id are refused.</summary>
    [Fact]
    public void M1_an_unparseable_trusted_header_is_not_skipped_for_a_forged_one_below_it()
    {
        static MimeMessage With(params string[] results)
        {
            var message = new MimeMessage();
            foreach (var value in results)
                message.Headers.Add(HeaderId.AuthenticationResults, value);
            message.From.Add(MailboxAddress.Parse("alice@company.example"));
            return message;
        }
        const string Forged = "mx.company.example; dmarc=pass header.from=company.example";
        foreach (var unparseable in (string[])["mx.company.example; spf=none smtp.helo=a(b; dmarc=fail header.from=company.example",
                     "mx.company.example; spf=pass smtp.mailfrom=\"a b\"@evil.example; dmarc=fail header.from=company.example"])
        {
            Assert.False(Crm.Connectors.Email.SenderAuthentication.IsAuthenticated(With(unparseable, Forged), "mx.company.example", "alice@company.example"), unparseable);
        }
        Assert.False(Crm.Connectors.Email.SenderAuthentication.IsAuthenticated(With(Forged, Forged), "mx.company.example", "alice@company.example"));
        Assert.True(Crm.Connectors.Email.SenderAuthentication.IsAuthenticated(With("other.example; dmarc=fail", Forged), "mx.company.example", "alice@company.example"));
        Assert.True(Crm.Connectors.Email.SenderAuthentication.IsAuthenticated(With("mx.company.example 1 (comment); dmarc=pass header.from=company.example"), "mx.company.example", "alice@company.example"));
    }

    /// <summary>M2: a mail stored before acknowledgements were switched on and read again (a cursor reset) claims none.</summary>
    [Fact]
    public async Task M2_a_redelivered_old_mail_claims_no_acknowledgement()
    {
        await using var app = App();
        await PutAccountAsync(app);
        var raw = Raw("""
            From: Carol <carol@customer.example.test>
            To: support@example.test
            Subject: Old request
            Message-ID: <old-1@customer.example.test>

            Long ago.
            """);
        Assert.False(Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, raw)).Result.Duplicate);
        await PutAccountAsync(app, s => s["autoAcknowledgement"] = new JsonObject { ["enabled"] = true });
        await Eventually.WaitForAsync(() => Task.FromResult(Account(app).SettingsAs<EmailChannelSettings>()!.AutoAcknowledgement?.Enabled == true), on => on, what: "the setting seen");
        Assert.True(Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, raw)).Result.Duplicate);
        Assert.Empty(await AutomaticMailAsync(app));
        // A new mail is still acknowledged.
        await ProcessAsync(app, Raw("""
            From: Carol <carol@customer.example.test>
            To: support@example.test
            Subject: New request
            Message-ID: <new-1@customer.example.test>

            Now.
            """), 2);
        Assert.Single(await AutomaticMailAsync(app));
    }

    /// <summary>G10: a text mail of 2,500 lines that start with "--" (an SQL script) is parsed and threaded, not stored
    /// raw as "more than 2000 MIME parts".</summary>
    [Fact]
    public async Task G10_a_text_mail_with_many_dash_dash_lines_is_parsed_and_threaded()
    {
        await using var app = App();
        await PutAccountAsync(app);
        var first = Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, Raw("""
            From: Carol <carol@customer.example.test>
            To: support@example.test
            Subject: Slow query
            Message-ID: <sql-1@customer.example.test>

            The query is slow.
            """)));
        var script = string.Concat(Enumerable.Range(0, 2500).Select(i => $"--step {i}\r\nSELECT {i};\r\n"));
        var reply = Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, Raw($"""
            From: Carol <carol@customer.example.test>
            To: support@example.test
            Subject: Re: Slow query
            Message-ID: <sql-2@customer.example.test>
            In-Reply-To: <sql-1@customer.example.test>

            """).Concat(Encoding.ASCII.GetBytes("\r\n" + script)).ToArray(), 2));
        Assert.Equal(first.Result.TicketNumber, reply.Result.TicketNumber);
        var message = await app.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == reply.Result.MessageId));
        Assert.DoesNotContain("MIME parts", message.Text);
        Assert.Contains("--step 2499", message.Text);
    }
    /// <summary>G6: a quarantined mail the admin deleted stays deleted when a settings change (another name of the same
    /// IMAP host) makes the reader read the folder again from UID 1.</summary>
    [Fact]
    public async Task G6_a_cursor_reset_does_not_bring_back_a_deleted_quarantine_entry()
    {
        await using var app = App();
        await PutAccountAsync(app);
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(EmailReviewTests.Mail("own-loop@example.test", "From ourselves", from: MailServer.Support)));
        using var admin = app.Admin();
        var page = await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/quarantine"),
            p => p.GetProperty("total").GetInt32() == 1, TimeSpan.FromSeconds(60), "the own-address mail quarantined");
        var qid = page.GetProperty("items")[0].GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/admin/channels/support/quarantine/{qid}")).StatusCode);

        // Same server, another name: the reader cannot know, so it reads INBOX from its first UID again.
        await PutAccountAsync(app, s => s["imap"]!["host"] = "localhost");
        await _mail.SendAsync(EmailReviewTests.Mail("after-reset@customer.test", "After the reset"));
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Messages.AsNoTracking().AnyAsync(m => m.ExternalId!.StartsWith("after-reset@customer.test|"))),
            found => found, TimeSpan.FromSeconds(60), "the mail after the reset stored");
        // The cursor is saved after the batch's acknowledgement, a moment after the message row.
        var expected = Crm.Connectors.Email.ImapMailboxReader.ServerIdentity(new ImapSettings { Host = "localhost", Port = _mail.ImapPort, User = MailServer.Support });
        var cursor = await Eventually.WaitForAsync(() => app.QueryAsync(db => db.MailboxCursors.AsNoTracking().SingleAsync(c => c.ChannelAccountId == "support")),
            c => c.Server == expected, TimeSpan.FromSeconds(60), "the cursor of the new server");
        Assert.Equal(expected, cursor.Server);
        Assert.Equal(0, (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/quarantine")).GetProperty("total").GetInt32());
    }

    /// <summary>G7: a mail refused again after its entry was deleted (the pruner or an admin, racing a retry) is not
    /// kept again under a new id; a live entry refused for a new reason shows the new reason.</summary>
    [Fact]
    public async Task G7_a_deleted_entry_is_not_requarantined_under_a_new_id_and_a_live_one_gets_the_new_reason()
    {
        await using var app = App();
        await PutAccountAsync(app);
        var state = app.Services.GetRequiredService<IMailboxStateStore>();
        var adminStore = app.Services.GetRequiredService<IMailboxAdminStore>();
        var raw = Raw("From: x@customer.example.test\nSubject: junk\n\nJunk.\n");
        Assert.True(await state.QuarantineAsync(new QuarantinedMail("support", "INBOX", 1, 1, "first reason", raw, DateTimeOffset.UtcNow)));
        Assert.False(await state.QuarantineAsync(new QuarantinedMail("support", "INBOX", 1, 1, "second reason", raw, DateTimeOffset.UtcNow)));
        var (items, _) = await adminStore.ListQuarantineAsync("support", 0, 10);
        Assert.Equal("second reason", Assert.Single(items).Reason);

        Assert.True(await adminStore.DeleteQuarantinedAsync("support", items[0].Id));
        Assert.False(await state.QuarantineAsync(new QuarantinedMail("support", "INBOX", 1, 1, "refused again", raw, DateTimeOffset.UtcNow)));
        Assert.Equal(0, (await adminStore.ListQuarantineAsync("support", 0, 10)).Total);
        Assert.Null(await adminStore.GetQuarantinedAsync("support", items[0].Id));
        Assert.False(await adminStore.DeleteQuarantinedAsync("support", items[0].Id));
    }

    /// <summary>G9: an agent's forward stored while forwarding was off (a ticket of the agent's) stays that one mail when
    /// it is read again after forwarding was switched on: a duplicate, not a second ticket for the original sender.</summary>
    [Fact]
    public async Task G9_a_forward_read_again_after_forwarding_was_switched_on_is_a_duplicate()
    {
        await using var app = App();
        JsonObject Forwarding(bool enabled) => new() { ["enabled"] = enabled, ["agentAddresses"] = new JsonArray("agent@company.example.test"), ["trustedAuthServId"] = "mx.example.test" };
        await PutAccountAsync(app, s => s["forwarding"] = Forwarding(false));
        var raw = Raw("""
            Authentication-Results: mx.example.test; dmarc=pass header.from=company.example.test
            From: Alice Agent <agent@company.example.test>
            To: support@example.test
            Subject: Fwd: broken invoice
            Message-ID: <fwd-g9@company.example.test>

            Please look at this.

            ---------- Forwarded message ---------
            From: Bob Customer <bob@customer.example.test>
            Date: Mon, 1 Jun 2026 10:00:00 +0000
            Subject: broken invoice
            To: Alice Agent <agent@company.example.test>

            The invoice is wrong.
            """);
        var first = Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, raw));
        Assert.False(first.Result.Duplicate);
        await PutAccountAsync(app, s => s["forwarding"] = Forwarding(true));
        await Eventually.WaitForAsync(() => Task.FromResult(Account(app).SettingsAs<EmailChannelSettings>()!.Forwarding?.Enabled == true), on => on, what: "forwarding on");
        var again = Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, raw));
        Assert.True(again.Result.Duplicate);
        Assert.Equal(first.Result.TicketNumber, again.Result.TicketNumber);

        // And the reverse: a forward stored with forwarding on stays the original sender's when it is switched off.
        var raw2 = Raw(Encoding.UTF8.GetString(raw).Replace("fwd-g9@", "fwd-g9b@", StringComparison.Ordinal));
        var forwarded = Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, raw2, 2));
        Assert.False(forwarded.Result.Duplicate);
        await PutAccountAsync(app, s => s["forwarding"] = Forwarding(false));
        await Eventually.WaitForAsync(() => Task.FromResult(Account(app).SettingsAs<EmailChannelSettings>()!.Forwarding?.Enabled == false), off => off, what: "forwarding off");
        var again2 = Assert.IsType<MailOutcome.Stored>(await ProcessAsync(app, raw2, 2));
        Assert.True(again2.Result.Duplicate);
        Assert.Equal(forwarded.Result.TicketNumber, again2.Result.TicketNumber);
        Assert.Equal(2, await app.QueryAsync(db => db.Conversations.CountAsync()));
    }
}
