using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.WebChat;
using Crm.Service.Contracts;
using Crm.Service.Tests.Email;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.WebChat;

/// <summary>Mail to a visitor with a proven address (real Postfix and Dovecot): the transcript on request (budgeted,
/// proven addresses only) and an agent's answer to an offline visitor.</summary>
public sealed class VisitorEmailTests
{
    [Fact]
    public async Task A_proven_visitor_gets_the_transcript_on_request_and_the_answer_by_email_once_they_left()
    {
        await using var mail = await MailServer.StartAsync();
        await using var rig = await WebChatRig.StartAsync(widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin }, emailChannel = "support", title = new { en = "Shop help" } });
        using (var admin = rig.App.Admin())
            Assert.True((await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = mail.ChannelSettings() })).IsSuccessStatusCode);

        var session = await rig.StartSessionAsync();
        var hub = rig.Visitor(session.Token);
        await hub.StartAsync();
        var ack = await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Nobody is online? My parcel <b>never</b> came.");

        // Before the address is proven there is no transcript (and nothing is mailed to a typed address).
        var unproven = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<TranscriptSent>("SendTranscript", session.ConversationId));
        Assert.Contains("unverified: Confirm your email address first", unproven.Message, StringComparison.Ordinal);
        await hub.InvokeAsync<VerificationStarted>("StartVerification", session.ConversationId, "Carol", MailServer.Customer);
        var code = Regex.Match((await MailsAsync(mail, 1))[0].TextBody ?? "", @"is (\d{6})").Groups[1].Value;
        await hub.InvokeAsync<VerificationDone>("Verify", session.ConversationId, code);

        var transcript = await hub.InvokeAsync<TranscriptSent>("SendTranscript", session.ConversationId);
        Assert.Equal((MailServer.Customer, 1), (transcript.Email, transcript.Lines));
        var mailed = (await MailsAsync(mail, 2))[1];
        Assert.Contains("You:\nNobody is online? My parcel <b>never</b> came.", (mailed.TextBody ?? "").ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Null(mailed.HtmlBody);
        // Budgeted: two an hour by default.
        await hub.InvokeAsync<TranscriptSent>("SendTranscript", session.ConversationId);
        Assert.Contains("rate-limited:", (await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<TranscriptSent>("SendTranscript", session.ConversationId))).Message, StringComparison.Ordinal);
        await MailsAsync(mail, 3);

        // While the visitor is connected, a reply is pushed only; once they left, it also goes to the proven address.
        using var agent = await rig.App.AgentAsync();
        var ticket = await rig.TicketOfAsync(ack.MessageId);
        await rig.AgentReplyAsync(agent, ticket, "Live answer");
        await Eventually.WaitForAsync(() => rig.App.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == ticket && m.Delivery == DeliveryStatus.Sent)), n => n == 1, what: "the live reply sent");
        await hub.DisposeAsync();
        await Eventually.WaitForAsync(() => rig.App.Grains.GetGrain<IWebChatSessionGrain>(GrainKeys.Conversation("shop", session.ConversationId)).HasVisitorAsync(), live => !live, what: "the visitor gone");
        await rig.AgentReplyAsync(agent, ticket, "Your parcel is at the depot; it arrives tomorrow.");
        var answer = (await MailsAsync(mail, 4))[3];
        Assert.Contains("Your parcel is at the depot; it arrives tomorrow.", answer.TextBody, StringComparison.Ordinal);
        Assert.Contains($"ticket #{ticket}", answer.TextBody, StringComparison.Ordinal);
        Assert.DoesNotContain(( await MailsAsync(mail, 4)), m => (m.TextBody ?? "").Contains("Live answer", StringComparison.Ordinal));
        await Eventually.WaitForAsync(() => rig.App.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == ticket && m.Delivery == DeliveryStatus.Sent)), n => n == 2, what: "the mailed reply sent");
    }

    private static async Task<List<MimeKit.MimeMessage>> MailsAsync(MailServer mail, int count) =>
        [.. (await Eventually.WaitForAsync(() => mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count >= count, what: $"{count} mails")).Select(m => m.Message)];
}
