using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>The findings of the email second pass's cold review (G1–G12), each reproduced against the fix.</summary>
public sealed class EmailThirdReviewTests : MailServerTests
{
    private CrmApp App() => new(_data.Path, new Dictionary<string, string?>
    {
        ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
        ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
    });

    private async Task PutAccountAsync(CrmApp app, Action<JsonObject>? change = null, bool enabled = true)
    {
        var settings = JsonSerializer.SerializeToNode(_mail.ChannelSettings())!.AsObject();
        change?.Invoke(settings);
        using var admin = app.Admin();
        var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", enabled, settings });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>4 MB of one-line header fields inside one part: two boundary lines, a million fields.</summary>
    private static byte[] HeaderFlood() => Encoding.ASCII.GetBytes(
        "From: Mallory <mallory@example.test>\r\nTo: support@example.test\r\nSubject: flood\r\nMessage-ID: <flood@example.test>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
        + string.Concat(Enumerable.Repeat("a:\r\n", 1_000_000)) + "\r\nbody\r\n--b--\r\n");

    [Fact]
    public void G1_a_header_flood_is_counted_cheaply_and_the_lanes_read_a_bounded_prefix()
    {
        var raw = HeaderFlood();
        Assert.True(MimeShape.Measure(raw, 2000, 10_000).Headers > 10_000);
        // The lanes read the top-level header: the flood there (MimeKit keeps ~240 bytes per field).
        var topLevel = Encoding.ASCII.GetBytes("From: Mallory <mallory@example.test>\r\n" + string.Concat(Enumerable.Repeat("a:\r\n", 1_000_000)) + "\r\nbody\r\n");
        Assert.True(MimeShape.Measure(topLevel, 2000, 10_000).Headers > 10_000);
        // An ordinary mail is far below the bound.
        Assert.InRange(MimeShape.Measure(MimeMappingTests.Bytes(EmailReviewTests.Mail("ok@customer.test", "Hello")), 2000, 10_000).Headers, 3, 30);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var lanes = MailLanes.Split([(1u, topLevel)]);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Single(lanes);
        // Unbounded, HeaderList.Load of the whole header allocates over 60 times its size.
        Assert.True(allocated < 20L * topLevel.Length, $"the lanes allocated {allocated / 1024 / 1024} MB for a {topLevel.Length / 1024 / 1024} MB mail");
    }

    [Fact]
    public async Task G1_a_header_flood_is_stored_raw_with_a_note_not_parsed()
    {
        await using var app = App();
        await PutAccountAsync(app);
        var account = app.Services.GetRequiredService<IChannelAccounts>().Find("support")!;
        var outcome = await app.Services.GetRequiredService<EmailIngest>().ProcessAsync(account, "INBOX", 1, 1, HeaderFlood());
        var stored = Assert.IsType<MailOutcome.Stored>(outcome);
        var message = await app.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == stored.Result.MessageId));
        Assert.Contains("more than 10000 header fields", message.Text);
    }

    [Fact]
    public void G12_a_long_line_in_a_fake_bounce_is_not_scanned_and_the_real_reply_is_found()
    {
        var bounce = new MimeMessage { Subject = "Undelivered Mail Returned to Sender" };
        bounce.From.Add(MailboxAddress.Parse("postmaster@x.example"));
        bounce.Headers.Add(HeaderId.ReturnPath, "<>");
        // One 1.2 MB line of "500 a ": quadratic for an unbounded ".*" (minutes); then a real SMTP reply.
        bounce.Body = new TextPart("plain") { Text = string.Concat(Enumerable.Repeat("500 a ", 200_000)) + "\n550 5.1.1 user unknown\n" };
        var report = BounceReport.Read(bounce, MimeMappingTests.Bytes(bounce));
        Assert.NotNull(report);
        Assert.Equal("Bounced: 550 5.1.1 user unknown", report.Reason);
    }

    [Fact]
    public void G11_G3_the_forwarded_sender_is_the_mailbox_address_never_one_in_the_display_name_and_long_lines_are_not_read()
    {
        Assert.Equal("s@evil.example", ForwardedMail.AddressOf("\"bob@customer.example <bob@customer.example>\" <s@evil.example>")?.Address);
        Assert.Equal("s@evil.example", ForwardedMail.AddressOf("Bob [mailto:bob@customer.example] <s@evil.example>")?.Address);
        Assert.Equal("bob@customer.example", ForwardedMail.AddressOf("Bob Customer [mailto:bob@customer.example]")?.Address);
        Assert.Null(ForwardedMail.AddressOf("Bob <" + string.Concat(Enumerable.Repeat("a@", 500_000))));

        // The header block the forwarding client wrote wins over an attached mail.
        var forward = new MimeMessage { Subject = "Fwd: order" };
        forward.From.Add(MailboxAddress.Parse("alice@company.example"));
        var attached = new MimeMessage { Subject = "order" };
        attached.From.Add(MailboxAddress.Parse("bob@customer.example"));
        attached.Body = new TextPart("plain") { Text = "x" };
        var text = "FYI\n\n---------- Forwarded message ---------\nFrom: Sam <s@evil.example>\nSubject: order\n\nSend it to me.";
        forward.Body = new Multipart("mixed") { new TextPart("plain") { Text = text }, new MessagePart { Message = attached } };
        Assert.Equal("s@evil.example", ForwardedMail.OriginalSender(forward, text)?.Address);
    }

    [Fact]
    public void G4_an_outlook_reply_is_not_a_forward_an_outlook_forward_is()
    {
        const string text = "Done, credited.\n\n________________________________\nFrom: Carol <carol@customer.example>\nSent: Monday\nSubject: invoice\n\nPlease credit.";
        var reply = new MimeMessage { Subject = "RE: invoice" };
        reply.Body = new TextPart("plain") { Text = text };
        Assert.Null(ForwardedMail.OriginalSender(reply, text));
        var noPrefix = new MimeMessage { Subject = "invoice" };
        noPrefix.Body = new TextPart("plain") { Text = text };
        Assert.Null(ForwardedMail.OriginalSender(noPrefix, text));
        var forward = new MimeMessage { Subject = "FW: invoice" };
        forward.Body = new TextPart("plain") { Text = text };
        Assert.Equal("carol@customer.example", ForwardedMail.OriginalSender(forward, text)?.Address);
    }

    [Fact]
    public async Task G2_a_forward_counts_only_when_the_trusted_server_authenticated_the_agent()
    {
        await using var app = App();
        using (var admin = app.Admin())
        {
            var settings = JsonSerializer.SerializeToNode(_mail.ChannelSettings())!.AsObject();
            settings["forwarding"] = new JsonObject { ["enabled"] = true, ["agentAddresses"] = new JsonArray("alice@company.example") };
            var refused = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings });
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
            Assert.Contains("trustedAuthServId", await refused.Content.ReadAsStringAsync());
        }
        await PutAccountAsync(app, s => s["forwarding"] = new JsonObject
        {
            ["enabled"] = true, ["agentAddresses"] = new JsonArray("alice@company.example"), ["trustedAuthServId"] = "mx.example.test",
        });

        MimeMessage Forward(int n, string? authenticationResults)
        {
            var message = new MimeMessage { MessageId = $"g2-{n}@attacker.example", Subject = "Fwd: change of delivery address" };
            message.From.Add(new MailboxAddress("Alice Agent", "alice@company.example"));
            message.To.Add(MailboxAddress.Parse(MailServer.Support));
            if (authenticationResults is not null)
                message.Headers.Add("Authentication-Results", authenticationResults);
            message.Body = new TextPart("plain") { Text = "---------- Forwarded message ---------\nFrom: Bob Customer <bob@customer.example>\nSubject: change\n\nSend order 4711 elsewhere." };
            return message;
        }
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(Forward(1, null)));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(Forward(2, "mx.example.test; dmarc=fail header.from=company.example")));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(Forward(3, "evil.example; dmarc=pass header.from=company.example")));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(Forward(4, "mx.example.test; dkim=pass header.d=other.example")));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(Forward(5, "mx.example.test; spf=pass smtp.mailfrom=company.example; dmarc=pass header.from=company.example")));

        var conversations = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Conversations.AsNoTracking().Where(c => c.ChannelAccountId == "support").Select(c => c.CustomerIdentity).ToListAsync()),
            c => c.Count == 5, what: "five conversations");
        // Only the authenticated forward opens Bob's ticket; the others are Alice's own (unauthenticated) mail.
        Assert.Single(conversations, c => c.Contains("bob@customer.example", StringComparison.Ordinal));
        Assert.Equal(4, conversations.Count(c => c.Contains("alice@company.example", StringComparison.Ordinal)));
        // The conversation row can land before its message row: wait for the message itself.
        var bobs = (await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ExternalId!.StartsWith("g2-5@attacker.example")).ToListAsync()),
            m => m.Count > 0, what: "the authenticated forward stored")).Single();
        Assert.StartsWith("[Forwarded by alice@company.example]", bobs.Text);
    }

    [Fact]
    public async Task G5_the_blob_of_a_deleted_or_pruned_quarantine_entry_is_removed_also_for_a_disabled_account()
    {
        await using var app = App();
        await PutAccountAsync(app);
        MimeMessage Large(int n)
        {
            // From the mailbox's own address: always quarantined. 300 KB: over the inline limit, so kept as a blob.
            var message = new MimeMessage { MessageId = $"g5-{n}@example.test", Subject = $"loop {n}" };
            message.From.Add(MailboxAddress.Parse(MailServer.Support));
            message.To.Add(MailboxAddress.Parse(MailServer.Support));
            message.Body = new TextPart("plain") { Text = $"{n}\n" + string.Concat(Enumerable.Repeat(new string('x', 70) + "\n", 4400)) };
            return message;
        }
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(Large(1)));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(Large(2)));
        var rows = await Eventually.WaitForAsync(() => app.QueryAsync(db => db.QuarantinedMail.AsNoTracking().OrderBy(q => q.Uid).ToListAsync()), r => r.Count == 2, what: "two quarantined");
        Assert.All(rows, r => Assert.NotNull(r.BlobSha256));
        bool BlobExists(string sha) => Directory.EnumerateFiles(Path.Combine(_data.Path, "blobs"), sha, SearchOption.AllDirectories).Any();
        Assert.All(rows, r => Assert.True(BlobExists(r.BlobSha256!)));

        using (var admin = app.Admin())
            Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/admin/channels/support/quarantine/{rows[0].Id}")).StatusCode);
        Assert.False(BlobExists(rows[0].BlobSha256!));

        // The account is disabled; its entry is past retention: the pruner removes the row and the blob.
        await PutAccountAsync(app, enabled: false);
        await app.QueryAsync(async db =>
        {
            var row = await db.QuarantinedMail.SingleAsync(q => q.Id == rows[1].Id);
            row.At = row.At.AddDays(-100);
            return await db.SaveChangesAsync();
        });
        var pruner = app.Services.GetServices<IHostedService>().OfType<QuarantinePruner>().Single();
        Assert.Equal(1, await pruner.PruneAsync(CancellationToken.None));
        Assert.False(BlobExists(rows[1].BlobSha256!));
        // Only tombstones are left (no bytes, no reason), so the same mails read again are not kept again (G6).
        Assert.Equal(0, await app.QueryAsync(db => db.QuarantinedMail.CountAsync(q => q.DeletedAtMs == null || q.Content != null || q.BlobSha256 != null)));
    }
}
