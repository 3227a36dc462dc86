using Crm.Connectors.Email;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>Review F4 and F5: a bounce names only the returned message, and a report of a delay or a delivery is no failure.</summary>
public sealed class BounceMatchingTests
{
    private static readonly Guid Earlier = Guid.NewGuid(), Bounced = Guid.NewGuid();

    /// <summary>A Postfix-style multipart/report: human part, delivery-status, and the returned headers, whose
    /// References name the thread's earlier (delivered) reply.</summary>
    private static MimeMessage Report(string action, string status, bool returnWholeMessage)
    {
        var report = new MimeMessage { Subject = action == "failed" ? "Undelivered Mail Returned to Sender" : "Delayed Mail (still being retried)", MessageId = "dsn-1@mx.example.test" };
        report.From.Add(new MailboxAddress("Mail Delivery System", "MAILER-DAEMON@mx.example.test"));
        report.To.Add(new MailboxAddress("", "support@example.test"));
        var body = new MultipartReport("delivery-status");
        body.Add(new TextPart("plain") { Text = $"This is the mail system at host mx.example.test.\n\nMessage-ID: <{EmailIds.Outbound(Earlier, "example.test")}> was mentioned in a note.\n" });
        var dsn = $"Reporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; ann@example.test\r\nAction: {action}\r\nStatus: {status}\r\nDiagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n";
        body.Add(new MimePart("message", "delivery-status") { Content = new MimeContent(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(dsn))) });
        var returned = $"From: support@example.test\r\nTo: ann@example.test\r\nSubject: Re: Printer [#7]\r\nMessage-ID: <{EmailIds.Outbound(Bounced, "example.test")}>\r\nIn-Reply-To: <{EmailIds.Outbound(Earlier, "example.test")}>\r\nReferences: <first@customer.test> <{EmailIds.Outbound(Earlier, "example.test")}>\r\n\r\n";
        body.Add(returnWholeMessage
            ? new MessagePart { Message = MimeMessage.Load(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(returned + "Text of the reply\r\n"))) }
            : new MimePart("text", "rfc822-headers") { Content = new MimeContent(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(returned))) });
        report.Body = body;
        return Reparse(report);
    }

    private static MimeMessage Reparse(MimeMessage message) => MimeMessage.Load(new MemoryStream(MimeMappingTests.Bytes(message)));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void F4_a_bounce_marks_only_the_returned_message_not_the_earlier_replies_its_references_name(bool returnWholeMessage)
    {
        var report = Report("failed", "5.2.2", returnWholeMessage);
        var bounce = BounceReport.Read(report, MimeMappingTests.Bytes(report));

        Assert.NotNull(bounce);
        Assert.True(bounce.Failed);
        Assert.Equal([Bounced], bounce.OutboundMessageIds);
    }

    [Fact]
    public void F4_a_plain_bounce_quoting_the_returned_headers_names_only_their_message_id()
    {
        var bounce = new MimeMessage { Subject = "Mail delivery failed: returning message to sender" };
        bounce.From.Add(new MailboxAddress("", "MAILER-DAEMON@mx.example.test"));
        bounce.Body = new TextPart("plain")
        {
            Text = $"  ann@example.test\n    550 5.1.1 User unknown\n\n------ This is a copy of the message's headers. ------\nMessage-ID: <{EmailIds.Outbound(Bounced, "example.test")}>\nIn-Reply-To: <{EmailIds.Outbound(Earlier, "example.test")}>\nReferences: <{EmailIds.Outbound(Earlier, "example.test")}>\n",
        };
        bounce = Reparse(bounce);
        Assert.Equal([Bounced], BounceReport.Read(bounce, MimeMappingTests.Bytes(bounce))!.OutboundMessageIds);
    }

    [Theory]
    [InlineData("delayed", "4.2.2")]
    [InlineData("delivered", "2.0.0")]
    [InlineData("relayed", "2.0.0")]
    public void F5_a_report_of_a_delay_or_a_delivery_is_no_failure(string action, string status)
    {
        var report = Report(action, status, returnWholeMessage: false);
        var bounce = BounceReport.Read(report, MimeMappingTests.Bytes(report));

        Assert.NotNull(bounce);
        Assert.False(bounce.Failed);
        Assert.Contains(action, bounce.Reason);
    }
}
