using System.Net.Http.Json;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>Mail an agent forwards opens a ticket for the original sender (settings.forwarding), with the forwarded
/// samples of the corpora (copied unedited): Gmail (mikel/mail raw_email8), a forward as attachment (mikel/mail
/// attachment_message_rfc822_inline_image.eml), Outlook for iOS and Gmail header blocks (crisp reply-parser bodies).</summary>
public sealed class ForwardedMailTests : MailServerTests
{
    private static string CorpusFile(params string[] path) => Path.Combine([MimeMappingTests.Corpus, .. path]);

    /// <summary>The file's bytes as a mailbox holds them: an mbox envelope line ("From sender date"), which is not part
    /// of the message, is left out, as a delivery agent does.</summary>
    private static byte[] Bytes(params string[] path)
    {
        var bytes = File.ReadAllBytes(CorpusFile(path));
        return bytes.AsSpan().StartsWith("From "u8) ? bytes[(Array.IndexOf(bytes, (byte)'\n') + 1)..] : bytes;
    }

    private static byte[] Received(string authenticationResults, byte[] raw) => [.. System.Text.Encoding.ASCII.GetBytes($"Authentication-Results: {authenticationResults}\r\n"), .. raw];

    private static MimeMessage Load(params string[] path) => MimeMessage.Load(new MemoryStream(Bytes(path)));

    /// <summary>A mail from an agent whose body is one of the corpus's forwarded texts, unedited.</summary>
    private static MimeMessage WithBody(string bodyFile, string from = "agent@example.test")
    {
        var message = new MimeMessage { MessageId = "fwd-" + Path.GetFileNameWithoutExtension(bodyFile) + "@example.test", Subject = "Fwd: something" };
        message.From.Add(MailboxAddress.Parse(from));
        message.To.Add(MailboxAddress.Parse(MailServer.Support));
        message.Body = new TextPart("plain") { Text = File.ReadAllText(CorpusFile("reply-parsing", "crisp-email-reply-parser", bodyFile)) };
        return message;
    }

    [Theory]
    [InlineData("email_ios_outlook.txt", "job-applicant-incoming-text+65701@hiringenginemail.com", "The Hiring Engine")]
    [InlineData("email_tricky_17_forward_header.txt", "john@example.com", "John Smith")]
    public void The_original_sender_is_read_from_the_forwarded_header_block(string bodyFile, string address, string name)
    {
        var message = WithBody(bodyFile);
        var original = ForwardedMail.OriginalSender(message, message.TextBody);
        Assert.Equal(address, original?.Address);
        Assert.Equal(name, original?.Name);
    }

    [Fact]
    public void Gmail_forward_and_forward_as_attachment_name_their_original_senders()
    {
        var gmail = Load("ruby-mail", "emails", "plain_emails", "raw_email8.eml");
        Assert.Equal("xxxxxxxx@xxx.com", ForwardedMail.OriginalSender(gmail, gmail.TextBody)?.Address);
        var attached = Load("ruby-mail", "emails", "attachment_emails", "attachment_message_rfc822_inline_image.eml");
        Assert.Equal("xxxx@xxxx.com", ForwardedMail.OriginalSender(attached, attached.TextBody)?.Address);
        // Apple Mail writes "Begin forwarded message:" (no sample in the corpora: this one is written here).
        var apple = new MimeMessage();
        apple.Body = new TextPart("plain") { Text = "FYI\n\nBegin forwarded message:\n\nFrom: Jane Doe <jane@customer.example>\nSubject: Broken link\nDate: 1 May 2025\nTo: agent@example.test\n\nHi" };
        Assert.Equal("jane@customer.example", ForwardedMail.OriginalSender(apple, apple.TextBody)?.Address);
        // Not a forward: no original sender.
        var plain = Load("ruby-mail", "emails", "plain_emails", "raw_email.eml");
        Assert.Null(ForwardedMail.OriginalSender(plain, plain.TextBody));
        Assert.Equal("Signed email causes file attachments", ForwardedMail.Subject("Fwd: FW: Signed email causes file attachments"));
    }

    [Fact]
    public async Task A_forward_from_a_configured_or_console_agent_opens_a_ticket_for_the_original_sender_once()
    {
        await using var app = new CrmApp(_data.Path);
        var settings = (Dictionary<string, object?>)System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, object?>>(System.Text.Json.JsonSerializer.Serialize(_mail.ChannelSettings()))!;
        settings["forwarding"] = new { enabled = true, agentAddresses = new[] { "xxxxxxxxx.xxxxxxx@gmail.com" }, consoleUsers = true, trustedAuthServId = "mx.example.test" };
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();
        // test@example.com (the forwarder of attachment_message_rfc822_inline_image.eml) is a console user.
        using (var scope = app.Services.CreateScope())
            Assert.True((await scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>().CreateAsync(new IdentityUser { UserName = "tester", Email = "test@example.com" }, "a-long-password-123")).Succeeded);

        // The receiving server's verdict on the forwarder, as it adds it on delivery (the corpus files stay unedited).
        var gmail = Received("mx.example.test; dkim=pass header.d=gmail.com", Bytes("ruby-mail", "emails", "plain_emails", "raw_email8.eml"));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, gmail);
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword,
            Received("mx.example.test; dmarc=pass header.from=example.com", Bytes("ruby-mail", "emails", "attachment_emails", "attachment_message_rfc822_inline_image.eml")));
        // Redelivered (a copy of the same forward): no second ticket.
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, gmail);

        var conversations = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Conversations.AsNoTracking().Where(c => c.ChannelAccountId == "support").Select(c => new { c.CustomerIdentity, c.TicketNumber }).ToListAsync()),
            c => c.Count >= 2, what: "two forwarded tickets");
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.MailboxCursors.AsNoTracking().Select(c => c.LastUid).SingleOrDefaultAsync()), last => last >= 3, what: "all three read");
        Assert.Equal(2, (await app.QueryAsync(db => db.Conversations.AsNoTracking().Where(c => c.ChannelAccountId == "support").ToListAsync())).Count);
        Assert.Contains(conversations, c => c.CustomerIdentity.Contains("xxxxxxxx@xxx.com", StringComparison.Ordinal));
        Assert.Contains(conversations, c => c.CustomerIdentity.Contains("xxxx@xxxx.com", StringComparison.Ordinal));
        Assert.DoesNotContain(conversations, c => c.CustomerIdentity.Contains("gmail.com", StringComparison.Ordinal) || c.CustomerIdentity.Contains("test@example.com", StringComparison.Ordinal));
        var messages = await app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound).ToListAsync());
        Assert.Equal(2, messages.Count);
        Assert.Contains(messages, m => m.Subject == "Signed email causes file attachments" && m.Text!.StartsWith("[Forwarded by xxxxxxxxx.xxxxxxx@gmail.com]", StringComparison.Ordinal));
    }
}
