using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>The dedupe key of a mail names its sender: a stranger reusing a Message-ID is not deduped against it, and
/// rows stored before the change (bare Message-ID) still recognise their redelivery.</summary>
public sealed class SenderDedupeTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;
    private CrmApp _app = null!;

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        _app = new CrmApp(_data.Path);
        using var admin = _app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private Task AppendAsync(MimeMessage message) =>
        _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(message));

    private static MimeMessage Mail(string id, string from, string subject, string? inReplyTo = null)
    {
        var message = new MimeMessage { MessageId = id, Subject = subject };
        message.From.Add(new MailboxAddress("", from));
        message.To.Add(new MailboxAddress("", MailServer.Support));
        if (inReplyTo is not null)
            message.InReplyTo = inReplyTo;
        message.Body = new TextPart("plain") { Text = subject };
        return message;
    }

    private Task<List<Crm.Service.Grains.Records.MessageRecord>> InboundAsync(int count) => Eventually.WaitForAsync(
        () => _app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound).OrderBy(m => m.CreatedAt).ToListAsync()),
        m => m.Count >= count, what: $"{count} inbound messages");

    [Fact]
    public async Task A_stranger_reusing_a_customers_message_id_gets_a_message_and_ticket_of_their_own()
    {
        await _mail.SendAsync(Mail("shared-id@customer.example.test", MailServer.Customer, "My invoice"));
        var alice = Assert.Single(await InboundAsync(1));

        await _mail.SendAsync(Mail("shared-id@customer.example.test", "mallory@example.test", "Same id, other sender"));
        await _mail.SendAsync(Mail("marker@customer.example.test", MailServer.Customer, "Marker behind it"));
        var all = await InboundAsync(3);

        Assert.Equal(3, all.Count);
        var mallory = Assert.Single(all, m => m.Subject == "Same id, other sender");
        Assert.NotEqual(alice.TicketNumber, mallory.TicketNumber);
        Assert.NotEqual(alice.ExternalId, mallory.ExternalId);
        Assert.Equal("shared-id@customer.example.test", EmailIds.MessageIdOf(mallory.ExternalId!));
        Assert.Equal(EmailIds.DedupeKey("shared-id@customer.example.test", MailServer.Customer), alice.ExternalId);
    }

    [Fact]
    public async Task A_row_stored_under_the_bare_message_id_still_dedupes_its_redelivery_and_threads_its_replies()
    {
        // What the first version stored: the bare Message-ID as dedupe and thread key.
        var handOff = _app.Services.GetRequiredService<IInboundHandOff>();
        var old = await handOff.HandOffAsync(new InboundMessage
        {
            ChannelAccountId = "support",
            ThreadKey = "legacy@customer.example.test",
            ExternalMessageId = "legacy@customer.example.test",
            Sender = new SenderIdentity(IdentityKind.Email, MailServer.Customer),
            SentAt = DateTimeOffset.UtcNow,
            Subject = "Stored by the first version",
            Text = "old",
            RawSource = "From: customer@example.test\r\n\r\nold"u8.ToArray(),
            RawContentType = "message/rfc822",
        });

        // Appended over IMAP, not sent through Postfix: its queue may deliver the three in any order, and the test
        // needs their UIDs in this order.
        await AppendAsync(Mail("legacy@customer.example.test", MailServer.Customer, "Stored by the first version"));
        await AppendAsync(Mail("legacy-reply@customer.example.test", MailServer.Customer, "Re: Stored by the first version", inReplyTo: "legacy@customer.example.test"));
        // Same sender, so one lane in UID order: once the marker is stored, the redelivery before it was handled.
        await AppendAsync(Mail("legacy-marker@customer.example.test", MailServer.Customer, "Marker"));
        var all = await InboundAsync(3);

        Assert.Equal(3, all.Count);
        Assert.Equal(old.MessageId, all[0].Id);
        Assert.Equal(old.TicketNumber, all[1].TicketNumber);
        Assert.Equal(EmailIds.DedupeKey("legacy-reply@customer.example.test", MailServer.Customer), all[1].ExternalId);
    }
}
