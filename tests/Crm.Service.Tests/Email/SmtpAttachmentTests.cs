using System.Net.Http.Json;
using System.Text;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>The SMTP sender sends a delivery's files as MIME attachments and its Cc addresses, through the real Postfix;
/// the mails are read back from Dovecot.</summary>
public sealed class SmtpAttachmentTests : IAsyncLifetime
{
    private const string Colleague = "colleague@example.test", ColleaguePassword = "colleague-pw";
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        await _mail.AddUserAsync(Colleague, ColleaguePassword);
    }

    public async Task DisposeAsync()
    {
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private static OutboundDelivery Delivery(IReadOnlyList<OutboundAttachment> files, IReadOnlyList<string> cc) => new()
    {
        MessageId = Guid.CreateVersion7(),
        TicketNumber = 4711,
        ChannelAccountId = "support",
        ThreadKey = "no-such-thread",
        Recipient = "email:" + MailServer.Customer,
        Author = "agent-1",
        Text = "Here are the files.",
        CreatedAt = DateTimeOffset.UtcNow,
        Attempt = 1,
        Attachments = files,
        Cc = cc,
    };

    [Fact]
    public async Task A_reply_carries_its_files_as_attachments_and_its_cc_gets_a_copy()
    {
        await using var app = new CrmApp(_data.Path);
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
        var sender = app.Services.GetServices<IOutboundSender>().Single(s => s.Channel == ChannelKind.Email);
        var pdf = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7)).ToArray();
        var result = await sender.SendAsync(Delivery(
            [new OutboundAttachment("Rechnung März.pdf", "application/pdf", pdf), new OutboundAttachment("notes.txt", "not a type", Encoding.UTF8.GetBytes("line 1\nline 2\n"))],
            [$"Colleague <{Colleague}>", MailServer.Customer, MailServer.Support]));
        Assert.True(result.Success, result.Error);

        var received = Assert.Single(await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count >= 1, TimeSpan.FromSeconds(60), "the reply"));
        var message = received.Message;
        Assert.Contains("Here are the files.", message.TextBody);
        var files = message.Attachments.OfType<MimePart>().ToList();
        Assert.Equal(["Rechnung März.pdf", "notes.txt"], files.Select(f => f.FileName));
        Assert.Equal("application/pdf", files[0].ContentType.MimeType);
        Assert.Equal("application/octet-stream", files[1].ContentType.MimeType);
        using (var content = new MemoryStream())
        {
            files[0].Content!.DecodeTo(content);
            Assert.Equal(pdf, content.ToArray());
        }
        // Cc: the colleague only (the customer is already the recipient, our own address is never copied).
        Assert.Equal([Colleague], message.Cc.Mailboxes.Select(m => m.Address));
        var copy = Assert.Single(await Eventually.WaitForAsync(() => _mail.ReadAsync(Colleague, ColleaguePassword), m => m.Count >= 1, TimeSpan.FromSeconds(60), "the colleague's copy"));
        Assert.Equal(message.MessageId, copy.Message.MessageId);

        var refused = await sender.SendAsync(Delivery([], ["not an address"]));
        Assert.False(refused.Success);
        Assert.True(refused.Permanent);
        Assert.Contains("not an address", refused.Error);
    }
}
