using Crm.Connectors.Abstractions;
using Crm.Connectors.WebChat;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.WebChat;

/// <summary>Review W2: the code budgets shared by everyone who names one recipient (codes mailed to it, wrong codes
/// entered for it) cannot be spent by a stranger to lock the address's owner out: each client address keeps a small
/// spare of its own, so the owner still gets a code while the stranger's path stays bounded.</summary>
public sealed class VisitorBudgetTests
{
    private const string Stranger = "203.0.113.7";
    private const string Owner = "198.51.100.9";

    private static IWebChatVisitorGrain NewVisitor(WebChatRig rig) =>
        rig.App.Grains.GetGrain<IWebChatVisitorGrain>(WebChatRig.Widget + "/" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task A_stranger_who_uses_up_a_recipients_code_budgets_does_not_lock_its_owner_out()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:VerificationCodesPerHourPerRecipient"] = "3",
            ["Channels:WebChat:VerificationCodesPerHourPerAddress"] = "100",
            ["Channels:WebChat:WrongCodesPerDayPerRecipient"] = "4",
        });

        // Codes to ann@: a stranger asks for the recipient's three an hour (with fresh visitors), then its own spare.
        const string ann = "ann@example.com";
        for (var i = 0; i < 4; i++)
            Assert.NotNull((await NewVisitor(rig).IssueCodeAsync(ann, null, Stranger)).Code);
        var refused = await NewVisitor(rig).IssueCodeAsync(ann, null, Stranger);
        Assert.Null(refused.Code);
        Assert.Equal(WebChatBudgetKeys.Recipient(ann), refused.RefusedBy);
        // Ann, from her own address, still gets a code (one: the path through is bounded too).
        Assert.NotNull((await NewVisitor(rig).IssueCodeAsync(ann, null, Owner)).Code);
        Assert.Null((await NewVisitor(rig).IssueCodeAsync(ann, null, Owner)).Code);

        // Wrong codes for bob@: the stranger guesses four times, which stops codes to bob@ for the day...
        const string bob = "bob@example.com";
        var guesser = NewVisitor(rig);
        Assert.NotNull((await guesser.IssueCodeAsync(bob, null, Stranger)).Code);
        for (var i = 0; i < 4; i++)
            Assert.NotEqual(CodeOutcome.Verified, (await guesser.CheckCodeAsync("1234567")).Outcome);
        // ... except one spare code per address: the stranger's is used once, then refused ...
        Assert.NotNull((await NewVisitor(rig).IssueCodeAsync(bob, null, Stranger)).Code);
        var stopped = await NewVisitor(rig).IssueCodeAsync(bob, null, Stranger);
        Assert.Null(stopped.Code);
        Assert.Equal(WebChatBudgetKeys.WrongCodes(bob), stopped.RefusedBy);
        // ... and Bob, from his address, gets his code and proves the address with it.
        var owner = NewVisitor(rig);
        var code = (await owner.IssueCodeAsync(bob, "Bob", Owner)).Code;
        Assert.NotNull(code);
        var check = await owner.CheckCodeAsync(code!);
        Assert.Equal((CodeOutcome.Verified, bob), (check.Outcome, check.Email));
    }

    /// <summary>Review KW3: the widget's budgets are counted per address group too (an IPv4 /24, an IPv6 /48), so many
    /// addresses of one network spend only their group's part; and a reserved share of the widget's budget is kept for
    /// established visitors (who wrote in their conversation or proved an address), so strangers from many networks who
    /// spend the open share do not shut them out.</summary>
    [Fact]
    public async Task Many_addresses_spend_only_their_networks_share_of_a_widgets_codes_and_established_visitors_keep_a_reserve()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:VerificationCodesPerDayPerWidget"] = "10",
            ["Channels:WebChat:VerificationCodesPerDayPerAddressGroup"] = "4",
            ["Channels:WebChat:WidgetBudgetReservedPercent"] = "20",
        });
        var n = 0;
        Task<CodeIssue> Ask(string address, IWebChatVisitorGrain? visitor = null, string? conversationId = null) =>
            (visitor ?? NewVisitor(rig)).IssueCodeAsync($"r{++n}@example.com", null, address, conversationId);

        // Ten addresses of one /24 (and a /56 of IPv6 would be one /48 likewise): four codes, then their group is spent.
        var refusals = new List<string?>();
        for (var i = 1; i <= 10; i++)
        {
            var issue = await Ask($"203.0.113.{i}");
            if (issue.Code is null)
                refusals.Add(issue.RefusedBy);
        }
        Assert.Equal(6, refusals.Count);
        Assert.All(refusals, r => Assert.Equal(WebChatBudgetKeys.WidgetGroup(WebChatRig.Widget, "203.0.113.0/24") + ":day", r));
        // A fresh visitor from elsewhere still gets a code.
        Assert.NotNull((await Ask(Owner)).Code);

        // Strangers from three more networks spend the open share (8 of 10)...
        Assert.NotNull((await Ask("192.0.2.1")).Code);
        Assert.NotNull((await Ask("192.0.2.2")).Code);
        Assert.NotNull((await Ask("233.252.0.1")).Code);
        var shut = await Ask("100.64.0.1");
        Assert.Null(shut.Code);
        Assert.Equal(WebChatBudgetKeys.Widget(WebChatRig.Widget) + ":day", shut.RefusedBy);
        // ... but a visitor who wrote in their conversation, and one who proved an address before, use the reserve.
        var session = await rig.StartSessionAsync();
        await using (var hub = rig.Visitor(session.Token))
        {
            await hub.StartAsync();
            await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "hello");
        }
        var identity = await rig.App.QueryAsync(db => db.Conversations.Where(c => c.ThreadKey == session.ConversationId).Select(c => c.CustomerIdentity).SingleAsync());
        var writer = rig.App.Grains.GetGrain<IWebChatVisitorGrain>(identity!["webchat:".Length..]);
        Assert.NotNull((await Ask("100.64.0.2", writer, session.ConversationId)).Code);
        var proven = NewVisitor(rig);
        await proven.VerifiedAsync("known@example.com");
        Assert.NotNull((await Ask("100.64.0.3", proven)).Code);
        Assert.Null((await Ask("100.64.0.4", NewVisitor(rig))).Code);
    }

    /// <summary>Review KW4: spare codes must not turn into thousands of guesses at one address. Thirty addresses each get a
    /// spare code for one recipient and guess with every try: the wrong codes accepted for it in a day stay within
    /// <see cref="WebChatOptions.GuessesPerDayPerRecipient"/>, and past it even a right code is not taken.</summary>
    [Fact]
    public async Task Guessing_at_one_recipient_stays_within_the_daily_bound_with_spare_codes_on()
    {
        const int bound = 12;
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:WrongCodesPerDayPerRecipient"] = "5",
            ["Channels:WebChat:GuessesPerDayPerRecipient"] = bound.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Channels:WebChat:SpareCodesPerDayAfterWrongCodes"] = "1",
            ["Channels:WebChat:SpareCodesPerHourPerRecipientAndAddress"] = "1",
            ["Channels:WebChat:SpareCodesPerDayPerRecipient"] = "100",
            ["Channels:WebChat:VerificationCodesPerHourPerRecipient"] = "100",
            ["Channels:WebChat:VerificationTriesPerCode"] = "5",
        });
        const string victim = "victim@example.com";
        for (var i = 1; i <= 30; i++)
        {
            var guesser = NewVisitor(rig);
            var code = (await guesser.IssueCodeAsync(victim, null, $"10.{i}.0.1")).Code;
            if (code is null)
                continue;
            var wrong = code == "000000" ? "000001" : "000000";
            for (var t = 0; t < 5; t++)
            {
                var check = await guesser.CheckCodeAsync(wrong);
                if (check.Outcome == CodeOutcome.NoCode)
                    break;
                Assert.Equal(CodeOutcome.Wrong, check.Outcome);
            }
        }
        var wrongKey = WebChatBudgetKeys.WrongCodes(victim);
        var accepted = await rig.App.QueryAsync(db => db.WebChatBudgetEvents.CountAsync(e => e.Key == wrongKey));
        Assert.InRange(accepted, 5, bound);
        // Past the bound, a code to the address is not even compared: the right one is refused too.
        var late = NewVisitor(rig);
        var lateCode = (await late.IssueCodeAsync(victim, null, "10.200.0.1")).Code;
        Assert.NotNull(lateCode);
        Assert.Equal(CodeOutcome.NoCode, (await late.CheckCodeAsync(lateCode)).Outcome);
    }
}
