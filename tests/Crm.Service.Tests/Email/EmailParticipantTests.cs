using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>Issue 16 (brief email7 items 1 and 2), on the real Postfix and Dovecot: a person the ticket's thread copied
/// in replies into the ticket as themselves (a participant, never a second ticket), and replies that share a root
/// we never stored (Zammad #5716) share one ticket.</summary>
public sealed class EmailParticipantTests : IAsyncLifetime
{
    private const string Colleague = "colleague@example.test", ColleaguePassword = "colleague-pw";
    private const string Manager = "manager@example.test", ManagerPassword = "manager-pw";
    private const string Stranger = "stranger@example.test", StrangerPassword = "stranger-pw";
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;
    private CrmApp _app = null!;

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        await _mail.AddUserAsync(Colleague, ColleaguePassword);
        await _mail.AddUserAsync(Manager, ManagerPassword);
        await _mail.AddUserAsync(Stranger, StrangerPassword);
        _app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
            ["Channels:Email:PollInterval"] = "00:00:01",
        });
        using var admin = _app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private static MimeMessage Mail(string id, string from, string subject, string text, IEnumerable<string>? to = null, IEnumerable<string>? cc = null,
        string? inReplyTo = null, IEnumerable<string>? references = null)
    {
        var message = new MimeMessage { MessageId = id, Subject = subject };
        message.From.Add(new MailboxAddress("", from));
        foreach (var address in to ?? [MailServer.Support])
            message.To.Add(new MailboxAddress("", address));
        foreach (var address in cc ?? [])
            message.Cc.Add(new MailboxAddress("", address));
        if (inReplyTo is not null)
            message.InReplyTo = inReplyTo;
        foreach (var reference in references ?? [])
            message.References.Add(reference);
        message.Body = new TextPart("plain") { Text = text };
        return message;
    }

    private sealed record Stored(long TicketNumber, string Author, Guid ConversationId, string? Cc);

    private Task<Stored> StoredAsync(string messageId) =>
        Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.ExternalId!.StartsWith(messageId + "|"))
                .Select(m => new Stored(m.TicketNumber, m.Author, m.ConversationId!.Value, m.Cc)).FirstOrDefaultAsync()),
            m => m is not null, TimeSpan.FromSeconds(60), $"{messageId} stored")!;

    private Task<Guid> CustomerOfAsync(Guid conversationId) =>
        _app.QueryAsync(db => db.Conversations.AsNoTracking().Where(c => c.Id == conversationId).Select(c => c.CustomerId).SingleAsync());

    [Fact]
    public async Task A_colleague_the_customer_copied_in_replies_into_the_ticket_as_themselves_and_the_customer_stays_the_reply_target()
    {
        // The customer writes to support and copies a colleague in; the colleague answers with "reply all".
        await _mail.SendAsync(Mail("open@customer.test", MailServer.Customer, "Printer on fire", "Help!", cc: [Colleague]));
        var opened = await StoredAsync("open@customer.test");
        Assert.Equal(Colleague, opened.Cc);

        await _mail.SendAsync(Mail("colleague-1@customer.test", Colleague, "Re: Printer on fire", "It is the second floor printer.",
            to: [MailServer.Customer, MailServer.Support], inReplyTo: "open@customer.test", references: ["open@customer.test"]));
        var joined = await StoredAsync("colleague-1@customer.test");

        Assert.Equal(opened.TicketNumber, joined.TicketNumber);
        Assert.Contains(Colleague, joined.Author);
        Assert.NotEqual(opened.ConversationId, joined.ConversationId);
        var colleagueCustomer = await CustomerOfAsync(joined.ConversationId);
        Assert.NotEqual(await CustomerOfAsync(opened.ConversationId), colleagueCustomer);
        Assert.Equal(1, await _app.QueryAsync(db => db.Tickets.CountAsync()));
        // The ticket's history marks them as a Cc participant.
        Assert.Equal(1, await _app.QueryAsync(db => db.Audit.CountAsync(a => a.Action == "participant-joined" && a.NewValue!.Contains(Colleague))));

        using var agent = await _app.AgentAsync();
        var timeline = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{opened.TicketNumber}/timeline");
        Assert.Contains(timeline.GetProperty("items").EnumerateArray(), e => e.GetProperty("author").GetString()!.Contains(Colleague));

        // An agent's reply without a conversation still answers the customer, not the participant.
        var created = await agent.PostAsJsonAsync($"/api/v1/tickets/{opened.TicketNumber}/reply", new { text = "We are on our way." });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var reply = await created.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(opened.ConversationId, reply.GetProperty("conversationId").GetGuid());

        // The colleague's next reply, to the agent's mail, lands in the colleague's own conversation on the same ticket.
        var ours = $"crm.{reply.GetProperty("id").GetGuid():N}@example.test";
        await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Any(x => x.Message.MessageId == ours), TimeSpan.FromSeconds(60), "the agent's reply");
        await _mail.SendAsync(Mail("colleague-2@customer.test", Colleague, $"Re: Printer on fire [#{opened.TicketNumber}]", "Thanks!",
            to: [MailServer.Support], inReplyTo: ours, references: ["open@customer.test", ours]));
        var again = await StoredAsync("colleague-2@customer.test");
        Assert.Equal(opened.TicketNumber, again.TicketNumber);
        Assert.Equal(joined.ConversationId, again.ConversationId);
        Assert.Equal(1, await _app.QueryAsync(db => db.Tickets.CountAsync()));
    }

    [Fact]
    public async Task Someone_an_agent_copied_in_replies_into_the_ticket_and_a_stranger_with_the_same_references_does_not()
    {
        await _mail.SendAsync(Mail("order@customer.test", MailServer.Customer, "Order 7", "Where is it?"));
        var opened = await StoredAsync("order@customer.test");
        using var agent = await _app.AgentAsync();
        var created = await agent.PostAsJsonAsync($"/api/v1/tickets/{opened.TicketNumber}/reply", new { text = "Asking the warehouse.", cc = new[] { $"Manager <{Manager}>" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var ours = $"crm.{(await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid():N}@example.test";
        await Eventually.WaitForAsync(() => _mail.ReadAsync(Manager, ManagerPassword), m => m.Any(x => x.Message.MessageId == ours), TimeSpan.FromSeconds(60), "the manager's copy");

        // A stranger who learnt the ids (a forwarded copy) is not on the thread: a ticket of their own.
        await _mail.SendAsync(Mail("stranger-1@else.test", Stranger, $"Re: Order 7 [#{opened.TicketNumber}]", "Me too",
            inReplyTo: ours, references: ["order@customer.test", ours]));
        var stranger = await StoredAsync("stranger-1@else.test");
        Assert.NotEqual(opened.TicketNumber, stranger.TicketNumber);

        // The manager the agent copied in answers the agent's mail: the customer's ticket, as the manager.
        await _mail.SendAsync(Mail("manager-1@example.test", Manager, "Re: Order 7", "Shipped today.",
            to: [MailServer.Support, MailServer.Customer], inReplyTo: ours, references: ["order@customer.test", ours]));
        var manager = await StoredAsync("manager-1@example.test");
        Assert.Equal(opened.TicketNumber, manager.TicketNumber);
        Assert.Contains(Manager, manager.Author);
        Assert.Equal(2, await _app.QueryAsync(db => db.Tickets.CountAsync()));
    }

    [Fact]
    public async Task Replies_that_share_a_root_we_never_stored_share_one_ticket()
    {
        // Zammad #5716: the customer mailed the colleague directly (never to us), then answered that mail twice with
        // support in Cc, each time to the first mail only; the colleague then answers the first mail too.
        const string Root = "outside-root@customer.test";
        await _mail.SendAsync(Mail("outside-reply-1@customer.test", MailServer.Customer, "Re: Contract", "Adding support.",
            to: [Colleague], cc: [MailServer.Support], inReplyTo: Root, references: [Root]));
        var first = await StoredAsync("outside-reply-1@customer.test");
        await _mail.SendAsync(Mail("outside-reply-2@customer.test", MailServer.Customer, "Re: Contract", "One more thing.",
            to: [Colleague], cc: [MailServer.Support], inReplyTo: Root, references: [Root]));
        var second = await StoredAsync("outside-reply-2@customer.test");
        Assert.Equal(first.TicketNumber, second.TicketNumber);
        Assert.Equal(first.ConversationId, second.ConversationId);

        await _mail.SendAsync(Mail("outside-colleague@customer.test", Colleague, "Re: Contract", "Agreed.",
            to: [MailServer.Customer], cc: [MailServer.Support], inReplyTo: Root, references: [Root]));
        var colleague = await StoredAsync("outside-colleague@customer.test");
        Assert.Equal(first.TicketNumber, colleague.TicketNumber);
        Assert.Contains(Colleague, colleague.Author);
        Assert.Equal(1, await _app.QueryAsync(db => db.Tickets.CountAsync()));
    }

    /// <summary>Review EN1: the victim's mail went to the attacker's ticket, the attacker being the only one who wrote
    /// the headers that "named" the victim. The victim gets a ticket of their own and the attacker's ticket none of it.</summary>
    private async Task AssertOwnTicketAsync(Stored attacker, string victimMessageId)
    {
        var victim = await StoredAsync(victimMessageId);
        Assert.NotEqual(attacker.TicketNumber, victim.TicketNumber);
        Assert.Contains(Colleague, victim.Author);
        Assert.Equal(0, await _app.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == attacker.TicketNumber && m.Author.Contains(Colleague))));
        Assert.Equal(2, await _app.QueryAsync(db => db.Tickets.CountAsync()));
    }

    [Fact]
    public async Task A_stranger_reusing_the_victims_Message_ID_and_copying_them_in_does_not_capture_the_victims_mail()
    {
        // The attacker opens a ticket under a Message-ID of the victim's that they received, copying the victim in.
        await _mail.SendAsync(Mail("victim-own@customer.test", Stranger, "Hello", "Copying a colleague.", cc: [Colleague]));
        var attacker = await StoredAsync("victim-own@customer.test");
        // The victim answers their own thread, to support only.
        await _mail.SendAsync(Mail("victim-2@customer.test", Colleague, "Re: My own matter", "About my own matter.",
            inReplyTo: "victim-own@customer.test", references: ["victim-own@customer.test"]));
        await AssertOwnTicketAsync(attacker, "victim-2@customer.test");
    }

    [Fact]
    public async Task A_stranger_sharing_the_victims_unknown_root_and_copying_them_in_does_not_capture_the_victims_mail()
    {
        const string Root = "victim-root@customer.test";
        await _mail.SendAsync(Mail("attacker-1@else.test", Stranger, "Re: Contract", "Copying a colleague.", cc: [Colleague],
            inReplyTo: Root, references: [Root]));
        var attacker = await StoredAsync("attacker-1@else.test");
        await _mail.SendAsync(Mail("victim-3@customer.test", Colleague, "Re: Contract", "About my own contract.",
            inReplyTo: Root, references: [Root]));
        await AssertOwnTicketAsync(attacker, "victim-3@customer.test");
    }

    /// <summary>The channel's settings again, with <paramref name="change"/> applied (the account's UpdatedAt moves on).</summary>
    private async Task PutSettingsAsync(Action<JsonObject> change)
    {
        var settings = JsonSerializer.SerializeToNode(_mail.ChannelSettings())!.AsObject();
        change(settings);
        using var admin = _app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task A_participants_first_mail_redelivered_acknowledges_nothing_to_the_participant()
    {
        // Review EM7 EN4: the ticket has no acknowledgement (opened before they were switched on); the colleague's mail,
        // delivered again after a crash before its IMAP flag, must not count as the ticket's opener.
        await _mail.SendAsync(Mail("early@customer.test", MailServer.Customer, "Invoice wrong", "Please fix.", cc: [Colleague]));
        var opened = await StoredAsync("early@customer.test");
        await PutSettingsAsync(s => s["autoAcknowledgement"] = new JsonObject { ["enabled"] = true, ["language"] = "en" });

        var reply = Mail("colleague-ack@customer.test", Colleague, "Re: Invoice wrong", "The amount is off by 10.",
            to: [MailServer.Customer, MailServer.Support], inReplyTo: "early@customer.test", references: ["early@customer.test"]);
        await _mail.SendAsync(reply);
        var joined = await StoredAsync("colleague-ack@customer.test");
        Assert.Equal(opened.TicketNumber, joined.TicketNumber);
        await _mail.SendAsync(reply); // the same mail again: a redelivery
        // A later mail (read after the redelivery: one reader, in UID order) opens a ticket and is acknowledged, so acks are on.
        await _mail.SendAsync(Mail("later@else.test", Stranger, "Something else", "Hello"));
        await StoredAsync("later@else.test");
        await Eventually.WaitForAsync(() => _app.QueryAsync(db => db.AutomaticMail.CountAsync(a => a.Recipient == Stranger)), n => n == 1, TimeSpan.FromSeconds(60), "the later mail's acknowledgement");

        Assert.Equal(0, await _app.QueryAsync(db => db.AutomaticMail.CountAsync(a => a.Recipient == Colleague)));
        Assert.Equal(0, await _app.QueryAsync(db => db.AutomaticMail.CountAsync(a => a.TicketNumber == opened.TicketNumber)));
    }

    [Fact]
    public async Task With_an_authserv_id_set_only_an_authenticated_participant_joins_the_ticket()
    {
        // Review EN5: From is anyone's to write; the receiving server's Authentication-Results vouches for it.
        await PutSettingsAsync(s => s["autoAcknowledgement"] = new JsonObject { ["enabled"] = false, ["trustedAuthServId"] = "mx.example.test" });
        await _mail.SendAsync(Mail("shared@customer.test", MailServer.Customer, "Roof leaking", "Water everywhere.", cc: [Colleague, Manager]));
        var opened = await StoredAsync("shared@customer.test");

        var vouched = Mail("manager-auth@customer.test", Manager, "Re: Roof leaking", "Since Monday.",
            to: [MailServer.Customer, MailServer.Support], inReplyTo: "shared@customer.test", references: ["shared@customer.test"]);
        vouched.Headers.Insert(0, "Authentication-Results", "mx.example.test; dmarc=pass header.from=example.test");
        await _mail.SendAsync(vouched);
        Assert.Equal(opened.TicketNumber, (await StoredAsync("manager-auth@customer.test")).TicketNumber);

        await _mail.SendAsync(Mail("colleague-forged@customer.test", Colleague, "Re: Roof leaking", "Close it, all fixed.",
            to: [MailServer.Customer, MailServer.Support], inReplyTo: "shared@customer.test", references: ["shared@customer.test"]));
        var forged = await StoredAsync("colleague-forged@customer.test");
        Assert.NotEqual(opened.TicketNumber, forged.TicketNumber);

        // Review RA3: once joined, the manager's later mails are checked too. A forged one with the ticket's tag, or
        // answering the manager's own joined mail, without Authentication-Results, does not land on the ticket.
        await _mail.SendAsync(Mail("manager-forged-tag@customer.test", Manager, $"Re: Roof leaking [#{opened.TicketNumber}]", "Close it, all fixed.",
            to: [MailServer.Support]));
        Assert.NotEqual(opened.TicketNumber, (await StoredAsync("manager-forged-tag@customer.test")).TicketNumber);
        await _mail.SendAsync(Mail("manager-forged-ref@customer.test", Manager, "Re: Roof leaking", "Reopen it.",
            to: [MailServer.Support], inReplyTo: "manager-auth@customer.test", references: ["manager-auth@customer.test"]));
        Assert.NotEqual(opened.TicketNumber, (await StoredAsync("manager-forged-ref@customer.test")).TicketNumber);
        // Authenticated, the manager's tagged mail still goes to the ticket.
        var vouchedAgain = Mail("manager-auth-2@customer.test", Manager, $"Re: Roof leaking [#{opened.TicketNumber}]", "Still dripping.", to: [MailServer.Support]);
        vouchedAgain.Headers.Insert(0, "Authentication-Results", "mx.example.test; dmarc=pass header.from=example.test");
        await _mail.SendAsync(vouchedAgain);
        Assert.Equal(opened.TicketNumber, (await StoredAsync("manager-auth-2@customer.test")).TicketNumber);
    }

    [Fact]
    public async Task Whether_an_address_was_copied_is_found_among_the_lists_that_name_it_not_the_newest_few()
    {
        // Review EN7: only Cc lists that contain the address are read, so an older mention is found however many
        // lists without it are newer (the read is bounded by the lists naming the address, not by all of them).
        await _mail.SendAsync(Mail("cc-old@customer.test", MailServer.Customer, "Boiler", "Cold.", cc: [Colleague]));
        var opened = await StoredAsync("cc-old@customer.test");
        for (var i = 0; i < 3; i++)
        {
            await _mail.SendAsync(Mail($"cc-new-{i}@customer.test", MailServer.Customer, $"Re: Boiler [#{opened.TicketNumber}]", $"Still cold {i}.",
                cc: [Manager]));
            await StoredAsync($"cc-new-{i}@customer.test");
        }
        var lookup = _app.Services.GetRequiredService<Crm.Connectors.Abstractions.IConversationLookup>();

        Assert.True(await lookup.WasCopiedAsync(opened.TicketNumber, Colleague, maxMessages: 2));
        Assert.False(await lookup.WasCopiedAsync(opened.TicketNumber, Stranger, maxMessages: 2));
    }

    [Fact]
    public async Task A_cc_entry_differing_from_the_sender_in_the_case_of_a_non_ascii_letter_is_still_found()
    {
        // Review RA7: SQLite's lower() folds ASCII only, so the pre-filter must not search for "ärger@" in "Ärger@...".
        await _mail.SendAsync(Mail("cc-idn@customer.test", MailServer.Customer, "Heating", "Cold.", cc: [Colleague]));
        var opened = await StoredAsync("cc-idn@customer.test");
        // An EAI address as a Cc entry (written directly: the test mail server does not speak SMTPUTF8).
        await _app.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == opened.TicketNumber && m.Cc != null)
            .ExecuteUpdateAsync(u => u.SetProperty(m => m.Cc, "Ärger Öffentlich <Ärger.Öl@Beispiel.test>\n" + Colleague)));
        var lookup = _app.Services.GetRequiredService<Crm.Connectors.Abstractions.IConversationLookup>();

        Assert.True(await lookup.WasCopiedAsync(opened.TicketNumber, "ärger.öl@beispiel.test"));
        Assert.True(await lookup.WasCopiedAsync(opened.TicketNumber, "ÄRGER.ÖL@BEISPIEL.TEST"));
        Assert.False(await lookup.WasCopiedAsync(opened.TicketNumber, "ärger.öl@beispiel.example"));
    }

    /// <summary>Review EO6: EN1's path (i) on its own. The Manager an agent's reply copied in answers that mail to
    /// support only (no reply-all, so not path (ii)) and joins; the colleague named only on the customer's Cc, who
    /// answers the same mail of ours without naming the customer, gets a ticket of their own.</summary>
    [Fact]
    public async Task Someone_our_mail_copied_in_joins_answering_support_only_and_someone_our_mail_did_not_copy_does_not()
    {
        await _mail.SendAsync(Mail("parcel@customer.test", MailServer.Customer, "Parcel 9", "Where is it?", cc: [Colleague]));
        var opened = await StoredAsync("parcel@customer.test");
        using var agent = await _app.AgentAsync();
        var created = await agent.PostAsJsonAsync($"/api/v1/tickets/{opened.TicketNumber}/reply", new { text = "Asking the depot.", cc = new[] { $"Manager <{Manager}>" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var replyId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var ours = $"crm.{replyId:N}@example.test";
        await Eventually.WaitForAsync(() => _mail.ReadAsync(Manager, ManagerPassword), m => m.Any(x => x.Message.MessageId == ours), TimeSpan.FromSeconds(60), "the manager's copy");
        // Our mail copied the Manager only, not the customer's Cc.
        var ourCc = await _app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.Id == replyId).Select(m => m.Cc).SingleAsync());
        Assert.Contains(Manager, ourCc);
        Assert.DoesNotContain(Colleague, ourCc);

        await _mail.SendAsync(Mail("manager-2@example.test", Manager, "Re: Parcel 9", "It left today.",
            to: [MailServer.Support], inReplyTo: ours, references: ["parcel@customer.test", ours]));
        var manager = await StoredAsync("manager-2@example.test");
        Assert.Equal(opened.TicketNumber, manager.TicketNumber);
        Assert.Contains(Manager, manager.Author);

        await _mail.SendAsync(Mail("colleague-9@customer.test", Colleague, "Re: Parcel 9", "Is it mine?",
            to: [MailServer.Support], inReplyTo: ours, references: ["parcel@customer.test", ours]));
        var colleague = await StoredAsync("colleague-9@customer.test");
        Assert.NotEqual(opened.TicketNumber, colleague.TicketNumber);
        Assert.Contains(Colleague, colleague.Author);
        Assert.Equal(2, await _app.QueryAsync(db => db.Tickets.CountAsync()));
    }
}
