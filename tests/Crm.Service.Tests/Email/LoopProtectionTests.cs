using Crm.Connectors.Email;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>Loop protection: machine-written mail is recognised, and automatic mail per recipient is capped.</summary>
public sealed class LoopProtectionTests
{
    private static MimeMessage Mail(string from, params (string Name, string Value)[] headers)
    {
        var message = new MimeMessage { Subject = "Hello" };
        message.From.Add(MailboxAddress.Parse(from));
        foreach (var (name, value) in headers)
            message.Headers.Add(name, value);
        return message;
    }

    [Theory]
    [InlineData("Auto-Submitted", "auto-replied")]
    [InlineData("Auto-Submitted", "auto-generated")]
    [InlineData("Precedence", "bulk")]
    [InlineData("Precedence", "list")]
    [InlineData("Precedence", "junk")]
    [InlineData("X-Autoreply", "yes")]
    [InlineData("X-Autorespond", "Out of office")]
    [InlineData("List-Id", "<users.lists.example.test>")]
    [InlineData("List-Unsubscribe", "<mailto:leave@example.test>")]
    public void Machine_written_mail_gets_no_automatic_answer(string header, string value)
    {
        Assert.NotNull(AutomaticMailGuard.AutomaticReason(Mail("ann@example.test", (header, value)), []));
    }

    [Theory]
    [InlineData("MAILER-DAEMON@mx.example.test")]
    [InlineData("postmaster@example.test")]
    [InlineData("support@example.test")]
    public void Daemons_and_our_own_addresses_get_no_automatic_answer(string from)
    {
        Assert.NotNull(AutomaticMailGuard.AutomaticReason(Mail(from), ["support@example.test"]));
    }

    [Fact]
    public void A_person_writing_gets_answers_including_auto_submitted_no()
    {
        Assert.Null(AutomaticMailGuard.AutomaticReason(Mail("ann@example.test", ("Auto-Submitted", "no")), ["support@example.test"]));
    }

    [Fact]
    public void A_plain_text_bounce_names_our_message_and_the_reason()
    {
        var id = Guid.CreateVersion7();
        var bounce = Mail("MAILER-DAEMON@mx.example.test");
        bounce.Subject = "Mail delivery failed: returning message to sender";
        bounce.Body = new TextPart("plain") { Text = $"This message was created automatically by mail delivery software.\n\n  ann@example.test\n    550 5.1.1 <ann@example.test>: Recipient address rejected: User unknown\n\n------ This is a copy of the message, including all the headers. ------\nMessage-ID: <{EmailIds.Outbound(id, "example.test")}>\n" };

        var report = BounceReport.Read(bounce, MimeMappingTests.Bytes(bounce));

        Assert.NotNull(report);
        Assert.Equal([id], report.OutboundMessageIds);
        Assert.Contains("550 5.1.1", report.Reason);
    }

    [Fact]
    public void An_ordinary_mail_is_no_bounce()
    {
        var mail = Mail("ann@example.test");
        mail.Body = new TextPart("plain") { Text = "My order is undeliverable?" };
        Assert.Null(BounceReport.Read(mail, MimeMappingTests.Bytes(mail)));
    }
}
