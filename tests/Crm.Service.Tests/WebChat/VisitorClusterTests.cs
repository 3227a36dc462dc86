using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.WebChat;
using Crm.Service.Tests.Email;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.WebChat;

/// <summary>Web chat state that must hold across a restart and across nodes on one store: pending email codes and the
/// code budgets (in the store), and the Data Protection key ring (in the store) that protects visitor tokens.</summary>
public sealed class VisitorClusterTests
{
    private static readonly object EmailWidget = new { allowedOrigins = new[] { WebChatRig.Origin }, emailChannel = "support", title = new { en = "Shop help" } };

    private static async Task<WebChatRig> StartWithMailAsync(MailServer mail, Dictionary<string, string?>? settings = null)
    {
        // These tests hold the shared budgets themselves. Every visitor here comes from 127.0.0.1, so the per-address
        // spare (a stranger cannot lock the owner out: VisitorBudgetTests) would let each one more code through.
        settings = new Dictionary<string, string?>(settings ?? [])
        {
            ["Channels:WebChat:SpareCodesPerHourPerRecipientAndAddress"] = "0",
            ["Channels:WebChat:SpareCodesPerDayAfterWrongCodes"] = "0",
        };
        var rig = await WebChatRig.StartAsync(settings, widgetSettings: EmailWidget);
        using var admin = rig.App.Admin();
        var created = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = mail.ChannelSettings() });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        return rig;
    }

    private static async Task<string> CodeAsync(MailServer mail, int nth)
    {
        var mails = await Eventually.WaitForAsync(() => mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count >= nth, timeout: TimeSpan.FromSeconds(60), what: $"mail {nth}");
        return Regex.Match(mails[nth - 1].Message.TextBody ?? "", @"is (\d{6})").Groups[1].Value;
    }

    private static async Task<string> RefusalAsync(Func<Task> call) => (await Assert.ThrowsAsync<HubException>(call)).Message;

    [Fact]
    public async Task A_pending_code_its_tries_and_the_code_budgets_survive_a_restart_and_hold_on_a_second_node()
    {
        await using var mail = await MailServer.StartAsync();
        await using var rig = await StartWithMailAsync(mail);
        var carol = await rig.StartSessionAsync();
        await using (var hub = rig.Visitor(carol.Token))
        {
            await hub.StartAsync();
            await hub.InvokeAsync<VerificationStarted>("StartVerification", carol.ConversationId, "Carol", MailServer.Customer);
            Assert.Contains("4 more tries", await RefusalAsync(() => hub.InvokeAsync<VerificationDone>("Verify", carol.ConversationId, "000000x")), StringComparison.Ordinal);
        }
        var code = await CodeAsync(mail, 1);

        // A restart loses neither the pending code nor the wrong try.
        await rig.RestartAsync();
        await using (var hub = rig.Visitor(carol.Token))
        {
            await hub.StartAsync();
            Assert.Contains("3 more tries", await RefusalAsync(() => hub.InvokeAsync<VerificationDone>("Verify", carol.ConversationId, "000000x")), StringComparison.Ordinal);
            Assert.Equal(MailServer.Customer, (await hub.InvokeAsync<VerificationDone>("Verify", carol.ConversationId, code)).Email);
            // Two more codes: the visitor's three an hour are used up...
            await hub.InvokeAsync<VerificationStarted>("StartVerification", carol.ConversationId, null, MailServer.Customer);
            await hub.InvokeAsync<VerificationStarted>("StartVerification", carol.ConversationId, null, MailServer.Customer);
        }
        await CodeAsync(mail, 3);
        // ... and stay used up after a restart.
        await rig.RestartAsync();
        await using (var hub = rig.Visitor(carol.Token))
        {
            await hub.StartAsync();
            Assert.Contains("rate-limited: You asked for several codes already", await RefusalAsync(() => hub.InvokeAsync<VerificationStarted>("StartVerification", carol.ConversationId, null, MailServer.Customer)), StringComparison.Ordinal);
        }

        // Two nodes on one store: the recipient's five codes an hour count on both, and a code asked for on one node is
        // entered on the other.
        await using var second = rig.SecondNode();
        var dave = await rig.StartSessionAsync(node: second);
        await using var daveOnSecond = rig.Visitor(dave.Token, node: second);
        await daveOnSecond.StartAsync();
        await daveOnSecond.InvokeAsync<VerificationStarted>("StartVerification", dave.ConversationId, null, MailServer.Customer);
        // Dave's code mail is delivered before Erin asks: Postfix may deliver two mails in either order.
        await CodeAsync(mail, 4);
        var erin = await rig.StartSessionAsync();
        await using var erinOnFirst = rig.Visitor(erin.Token);
        await erinOnFirst.StartAsync();
        await erinOnFirst.InvokeAsync<VerificationStarted>("StartVerification", erin.ConversationId, null, MailServer.Customer);
        var erinsCode = await CodeAsync(mail, 5);
        Assert.Contains("rate-limited: Too many codes were sent lately", await RefusalAsync(() => daveOnSecond.InvokeAsync<VerificationStarted>("StartVerification", dave.ConversationId, null, MailServer.Customer)), StringComparison.Ordinal);
        await using var erinOnSecond = rig.Visitor(erin.Token, node: second);
        await erinOnSecond.StartAsync();
        Assert.Equal(MailServer.Customer, (await erinOnSecond.InvokeAsync<VerificationDone>("Verify", erin.ConversationId, erinsCode)).Email);
        Assert.Equal(5, (await mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword)).Count);
    }

    [Fact]
    public async Task V2_code_mails_have_a_widget_wide_cap_and_wrong_codes_for_an_address_stop_further_codes_to_it()
    {
        await using var mail = await MailServer.StartAsync();
        await using var rig = await StartWithMailAsync(mail, new()
        {
            ["Channels:WebChat:VerificationCodesPerHourPerWidget"] = "3",
            ["Channels:WebChat:VerificationCodesPerHourPerRecipient"] = "100",
            ["Channels:WebChat:VerificationCodesPerHourPerAddress"] = "100",
            ["Channels:WebChat:WrongCodesPerDayPerRecipient"] = "4",
        });
        var hubs = new List<(HubConnection Hub, string Conversation)>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var session = await rig.StartSessionAsync();
                var hub = rig.Visitor(session.Token);
                await hub.StartAsync();
                hubs.Add((hub, session.ConversationId));
            }
            // One visitor guesses at the customer's address: 4 wrong codes (of the code's 5 tries) ...
            await hubs[0].Hub.InvokeAsync<VerificationStarted>("StartVerification", hubs[0].Conversation, null, MailServer.Customer);
            for (var i = 0; i < 4; i++)
                await RefusalAsync(() => hubs[0].Hub.InvokeAsync<VerificationDone>("Verify", hubs[0].Conversation, "99999" + i));
            // ... and no visitor gets another code for that address today.
            Assert.Contains("rate-limited: Too many codes were sent lately", await RefusalAsync(() => hubs[1].Hub.InvokeAsync<VerificationStarted>("StartVerification", hubs[1].Conversation, null, MailServer.Customer)), StringComparison.Ordinal);

            // Codes to other addresses: the widget's three an hour (one used above), then none, whoever asks.
            await hubs[1].Hub.InvokeAsync<VerificationStarted>("StartVerification", hubs[1].Conversation, null, MailServer.Support);
            await hubs[2].Hub.InvokeAsync<VerificationStarted>("StartVerification", hubs[2].Conversation, null, MailServer.Support);
            Assert.Contains("rate-limited: Too many codes were sent lately", await RefusalAsync(() => hubs[3].Hub.InvokeAsync<VerificationStarted>("StartVerification", hubs[3].Conversation, null, MailServer.Support)), StringComparison.Ordinal);
        }
        finally
        {
            foreach (var (hub, _) in hubs)
                await hub.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_visitor_token_made_on_one_node_is_accepted_by_another_node_with_its_own_data_folder()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        await using (var hub = rig.Visitor(session.Token))
        {
            await hub.StartAsync();
            await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Asked on the first node");
        }

        // The second node shares only the database: before the key ring moved into the store, it had keys of its own
        // and answered this token with a new, empty visitor.
        await using var second = rig.SecondNode(ownDataFolder: true);
        var resumed = await rig.StartSessionAsync(session.Token, node: second);
        Assert.False(resumed.NewVisitor);
        Assert.Equal(session.ConversationId, resumed.ConversationId);
        await using var onSecond = rig.Visitor(session.Token, node: second);
        await onSecond.StartAsync();
        var history = await onSecond.InvokeAsync<ChatHistory>("History", session.ConversationId);
        Assert.Equal(["Asked on the first node"], history.Lines.Select(l => l.Text));
        // One key ring, in the store.
        Assert.True(await rig.App.QueryAsync(db => db.DataProtectionKeys.CountAsync()) >= 1);
        Assert.False(Directory.Exists(Path.Combine(second.DataDirectory, "keys")));
    }
}
