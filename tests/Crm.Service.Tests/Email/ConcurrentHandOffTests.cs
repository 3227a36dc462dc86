using System.Net.Http.Json;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using MailKit;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>A batch is handed off concurrently, one ordered lane per possible conversation: related mails keep their order.</summary>
public sealed class ConcurrentHandOffTests
{
    private static byte[] Mail(string id, string from, string subject, string? inReplyTo = null, string? references = null)
    {
        var message = new MimeMessage { MessageId = id, Subject = subject };
        message.From.Add(new MailboxAddress("", from));
        message.To.Add(new MailboxAddress("", MailServer.Support));
        if (inReplyTo is not null)
            message.InReplyTo = inReplyTo;
        if (references is not null)
            message.References.Add(references);
        message.Body = new TextPart("plain") { Text = subject };
        return MimeMappingTests.Bytes(message);
    }

    [Fact]
    public void Mails_that_may_share_a_conversation_share_a_lane_in_uid_order_and_strangers_get_lanes_of_their_own()
    {
        var lanes = MailLanes.Split(
        [
            (1, Mail("a1@x.test", "alice@x.test", "A")),
            (2, Mail("b1@x.test", "bob@x.test", "B")),
            (3, Mail("c1@x.test", "carol@x.test", "C", inReplyTo: "a1@x.test")),   // a colleague answering Alice's mail
            (4, Mail("a2@x.test", "ALICE@x.test", "A again")),                     // Alice again, another case
            (5, Mail("d1@x.test", "dave@x.test", "Re: B [#42]")),
            (6, Mail("e1@x.test", "erin@x.test", "Something [#42]")),              // same ticket tag as Dave
            (7, Mail("f1@x.test", "frank@x.test", "F", references: "zz@x.test")),
            (8, Mail("g1@x.test", "grace@x.test", "G", references: "zz@x.test")),  // both answer the same unknown mail
            (9, Mail("h1@x.test", "heidi@x.test", "H")),
        ]);

        Assert.Equal([[1u, 3u, 4u], [2u], [5u, 6u], [7u, 8u], [9u]], lanes.Select(l => l.Select(m => m.Uid).ToArray()).ToArray());
    }

    [Fact]
    public void A_mail_whose_header_cannot_be_read_gets_a_lane_of_its_own()
    {
        var lanes = MailLanes.Split([(1, "\0\0\0 not a mail"u8.ToArray()), (2, Mail("a@x.test", "alice@x.test", "A"))]);
        Assert.Equal(2, lanes.Count);
    }

    [Fact]
    public async Task Chains_of_replies_in_one_batch_land_on_their_own_tickets_in_order()
    {
        const int Customers = 3, PerCustomer = 6;
        using var data = new TempDirectory();
        await using var mail = await MailServer.StartAsync();
        // Interleaved: customer 0's first mail, customer 1's first mail, …, then everyone's replies to their previous mail.
        for (var n = 0; n < PerCustomer; n++)
            for (var c = 0; c < Customers; c++)
                await mail.AppendAsync(MailServer.Support, MailServer.SupportPassword,
                    Mail($"chain{c}-{n}@customer.test", $"chain{c}@example.test", n == 0 ? $"Case of {c}" : $"Re: Case of {c}", inReplyTo: n == 0 ? null : $"chain{c}-{n - 1}@customer.test"));

        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["Channels:Email:BatchSize"] = "100", ["Channels:Email:HandOffParallelism"] = "8" });
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = mail.ChannelSettings() })).EnsureSuccessStatusCode();

        var stored = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound)
                .Select(m => new { m.ExternalId, m.TicketNumber, m.CreatedAt }).ToListAsync()),
            m => m.Count == Customers * PerCustomer, what: "every mail stored");
        await Eventually.WaitForAsync(() => mail.ReadAsync(MailServer.Support, MailServer.SupportPassword), m => m.All(x => x.Flags.HasFlag(MessageFlags.Seen)), what: "all \\Seen");

        var tickets = stored.GroupBy(m => m.TicketNumber).ToList();
        Assert.Equal(Customers, tickets.Count);
        foreach (var ticket in tickets)
        {
            var ids = ticket.OrderBy(m => m.CreatedAt).Select(m => EmailIds.MessageIdOf(m.ExternalId!)).ToList();
            var customer = ids[0].Split('-')[0];
            Assert.Equal(Enumerable.Range(0, PerCustomer).Select(n => $"{customer}-{n}@customer.test"), ids);
        }
    }
}
