using System.Net.Http.Json;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>Brief email7 item 6: an automatic mail (the acknowledgement) whose SMTP answer was lost after the whole mail
/// and its final dot were sent is "not confirmed": neither resent nor marked failed as if it never left.</summary>
public sealed class AutomaticMailUnknownTests : MailServerTests
{
    [Fact]
    public async Task An_acknowledgement_whose_answer_is_lost_after_the_final_dot_is_not_confirmed_and_not_resent()
    {
        await using var smtp = new FakeSmtpServer { HoldDataReply = false, DropAfterData = true };
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
            ["Channels:Email:PollInterval"] = "00:00:01",
        });
        var settings = new
        {
            address = MailServer.Support,
            displayName = "Example Support",
            imap = new { host = "127.0.0.1", port = _mail.ImapPort, security = "none", user = MailServer.Support, password = MailServer.SupportPassword, folder = "INBOX", afterProcessing = "seen" },
            smtp = new { host = "127.0.0.1", port = smtp.Port, security = "none", user = MailServer.Support, password = MailServer.SupportPassword },
            autoAcknowledgement = new { enabled = true, language = "en" },
        };
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();

        var message = new MimeMessage { MessageId = "ack-lost@customer.example.test", Subject = "My order" };
        message.From.Add(new MailboxAddress("Carol Customer", MailServer.Customer));
        message.To.Add(new MailboxAddress("Support", MailServer.Support));
        message.Body = new TextPart("plain") { Text = "Where is it?" };
        await _mail.SendAsync(message);

        var row = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.AutomaticMail.AsNoTracking().FirstOrDefaultAsync()),
            r => r is { State: not AutomaticMailRecord.Pending }, TimeSpan.FromSeconds(60), "the acknowledgement settled");
        Assert.Equal(AutomaticMailRecord.Failed, row!.State);
        Assert.StartsWith("Not confirmed: ", row.Error);
        Assert.Contains("may have been delivered", row.Error);
        Assert.Equal(1, row.Attempts);
        Assert.Equal(1, smtp.Received);
    }
}
