using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.WebChat;
using Crm.Service.Contracts;
using Crm.Service.Tests.Email;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.WebChat;

/// <summary>The pre-chat form's email proof: a code mailed through the widget's email channel (real Postfix and
/// Dovecot), read from the recipient's mailbox; only a proven address joins the visitor to that customer.</summary>
public sealed class VisitorVerificationTests
{
    private static object Widget(string? emailChannel = "support") =>
        new { allowedOrigins = new[] { WebChatRig.Origin }, preChatForm = true, emailChannel, title = new { en = "Shop help" } };

    [Fact]
    public async Task A_visitor_joins_the_customer_of_an_address_only_after_proving_it_with_the_mailed_code_and_wrong_codes_run_out()
    {
        await using var mail = await MailServer.StartAsync();
        await using var rig = await WebChatRig.StartAsync(widgetSettings: Widget());
        using (var admin = rig.App.Admin())
        {
            var created = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = mail.ChannelSettings() });
            Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        }
        using (var page = rig.Page())
        {
            var config = await page.GetFromJsonAsync<JsonElement>("/api/v1/webchat/shop/config");
            Assert.True(config.GetProperty("preChatForm").GetBoolean());
            Assert.True(config.GetProperty("emailFeatures").GetBoolean());
        }
        // The address already belongs to a customer (who wrote by email before).
        var carol = await rig.App.Grains.GetGrain<IIdentityGrain>(GrainKeys.Identity(IdentityKind.Email, MailServer.Customer, "support")).ResolveCustomerAsync("Carol");

        var session = await rig.StartSessionAsync();
        await using var hub = rig.Visitor(session.Token);
        await hub.StartAsync();
        var ack = await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Where is my order?");
        var ticket = await rig.TicketOfAsync(ack.MessageId);
        async Task<Guid> CustomerOfTicketAsync() => await rig.App.QueryAsync(db => db.Tickets.Where(t => t.Number == ticket).Select(t => t.CustomerId).SingleAsync());
        Assert.NotEqual(carol, await CustomerOfTicketAsync());

        // Typing the address proves nothing: a code goes to it, and the conversation is still the visitor's own.
        var started = await hub.InvokeAsync<VerificationStarted>("StartVerification", session.ConversationId, "Carol", " Customer@Example.test ");
        Assert.Equal(MailServer.Customer, started.Email);
        var first = await CodeAsync(mail, 1);
        Assert.NotEqual(carol, await CustomerOfTicketAsync());

        // Wrong codes: a few tries, then the code is void and even the right one is refused.
        var wrong = first == "000000" ? "111111" : "000000";
        var tries = new List<string>();
        for (var i = 0; i < 5; i++)
            tries.Add((await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<VerificationDone>("Verify", session.ConversationId, wrong))).Message);
        Assert.Contains("wrong-code: That code is not right. 4 more tries", tries[0], StringComparison.Ordinal);
        Assert.Contains("no longer valid", tries[4], StringComparison.Ordinal);
        var burned = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<VerificationDone>("Verify", session.ConversationId, first));
        Assert.Contains("no longer valid", burned.Message, StringComparison.Ordinal);
        Assert.NotEqual(carol, await CustomerOfTicketAsync());

        // A new code, proven: the visitor's ticket and identity now belong to Carol.
        await hub.InvokeAsync<VerificationStarted>("StartVerification", session.ConversationId, "Carol", MailServer.Customer);
        var second = await CodeAsync(mail, 2);
        var done = await hub.InvokeAsync<VerificationDone>("Verify", session.ConversationId, second);
        Assert.Equal(MailServer.Customer, done.Email);
        Assert.Equal(carol, await CustomerOfTicketAsync());
        var identity = await rig.App.QueryAsync(db => db.Identities.Where(i => i.Key.StartsWith("webchat:shop/")).Select(i => i.CustomerId).SingleAsync());
        Assert.Equal(carol, identity);
        using (var agent = await rig.App.AgentAsync())
        {
            var standing = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/webchat-conversations/shop/{session.ConversationId}/visitor");
            Assert.Equal(MailServer.Customer, standing.GetProperty("verifiedEmail").GetString());
        }
        // A code works once.
        Assert.Contains("no longer valid", (await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<VerificationDone>("Verify", session.ConversationId, second))).Message, StringComparison.Ordinal);

        // Codes per visitor are capped (3 an hour by default): the fourth request is refused and sends nothing.
        await hub.InvokeAsync<VerificationStarted>("StartVerification", session.ConversationId, null, MailServer.Customer);
        var capped = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<VerificationStarted>("StartVerification", session.ConversationId, null, MailServer.Customer));
        Assert.Contains("rate-limited: You asked for several codes already", capped.Message, StringComparison.Ordinal);
        await CodeAsync(mail, 3);
        Assert.Equal(3, (await mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword)).Count);
    }

    [Fact]
    public async Task Without_an_email_channel_or_with_a_malformed_address_no_code_is_sent()
    {
        await using var rig = await WebChatRig.StartAsync(widgetSettings: Widget(emailChannel: null));
        using (var page = rig.Page())
            Assert.False((await page.GetFromJsonAsync<JsonElement>("/api/v1/webchat/shop/config")).GetProperty("emailFeatures").GetBoolean());
        var session = await rig.StartSessionAsync();
        await using var hub = rig.Visitor(session.Token);
        await hub.StartAsync();
        var none = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<VerificationStarted>("StartVerification", session.ConversationId, "Ann", "ann@example.com"));
        Assert.Contains("unavailable: Email confirmation is not available", none.Message, StringComparison.Ordinal);

        // A widget pointing at an account that is not an email account offers nothing either.
        await rig.CreateWidgetAsync("other", new { allowedOrigins = new[] { WebChatRig.Origin }, emailChannel = "shop" });
        var other = await rig.StartSessionAsync(widget: "other");
        await using var otherHub = rig.Visitor(other.Token, widget: "other");
        await otherHub.StartAsync();
        Assert.Contains("unavailable:", (await Assert.ThrowsAsync<HubException>(() => otherHub.InvokeAsync<VerificationStarted>("StartVerification", other.ConversationId, null, "ann@example.com"))).Message, StringComparison.Ordinal);

        foreach (var bad in new[] { "ann", "Ann <ann@example.com>", "a@b.com, c@d.com", "ann@localhost", "ann@example.com\r\nBcc: x@y.z" })
            Assert.Contains("invalid: Please enter an email address", (await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<VerificationStarted>("StartVerification", session.ConversationId, null, bad))).Message, StringComparison.Ordinal);
        Assert.Equal("ann@example.com", WidgetMail.NormalizeEmail(" Ann@Example.COM "));
    }

    /// <summary>The code of the <paramref name="nth"/> mail in the customer's mailbox (real IMAP).</summary>
    private static async Task<string> CodeAsync(MailServer mail, int nth)
    {
        var mails = await Eventually.WaitForAsync(() => mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count >= nth, what: $"mail {nth} with a code");
        var body = mails[nth - 1].Message.TextBody ?? "";
        Assert.Equal(MailServer.Support, mails[nth - 1].Message.From.Mailboxes.Single().Address);
        // Not a ticket reply: the mail says what it is, with no "Re:" and no ticket tag.
        Assert.StartsWith("Your code: ", mails[nth - 1].Message.Subject, StringComparison.Ordinal);
        return Regex.Match(body, @"is (\d{6})").Groups[1].Value is { Length: 6 } code ? code : throw new Xunit.Sdk.XunitException("No code in: " + body);
    }
}
