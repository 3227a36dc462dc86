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
        Task<CodeIssue> Ask(string address, IWebChatVisitorGrain? visitor = null) =>
            (visitor ?? NewVisitor(rig)).IssueCodeAsync($"r{++n}@example.com", null, address);

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
        // ... but a visitor whose conversation an agent answered, and one who proved an address before, use the reserve
        // (each from its own network: one network may use a quarter of the reserve, at least one code).
        var answered = await ChatterAsync(rig, answered: true);
        Assert.NotNull((await Ask("100.64.0.2", answered)).Code);
        var proven = NewVisitor(rig);
        await proven.VerifiedAsync("known@example.com");
        Assert.NotNull((await Ask("100.64.1.3", proven)).Code);
        Assert.Null((await Ask("100.64.2.4", NewVisitor(rig))).Code);
    }

    /// <summary>A visitor who wrote in their own conversation (a script does that with one message) and, with
    /// <paramref name="answered"/>, got an agent's reply there.</summary>
    private static async Task<IWebChatVisitorGrain> ChatterAsync(WebChatRig rig, bool answered) =>
        (await ChatterSessionAsync(rig, answered)).Visitor;

    private static async Task<(IWebChatVisitorGrain Visitor, SessionResponse Session)> ChatterSessionAsync(WebChatRig rig, bool answered, SessionResponse? session = null)
    {
        session ??= await rig.StartSessionAsync();
        await using (var hub = rig.Visitor(session.Token))
        {
            await hub.StartAsync();
            var sent = await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "hi");
            if (answered)
            {
                using var agent = await rig.App.AgentAsync("agent-" + Guid.NewGuid().ToString("N")[..8]);
                await rig.AgentReplyAsync(agent, await rig.TicketOfAsync(sent.MessageId), "Hello, how can we help?");
            }
        }
        var identity = await rig.App.QueryAsync(db => db.Conversations.Where(c => c.ThreadKey == session.ConversationId).Select(c => c.CustomerIdentity).SingleAsync());
        return (rig.App.Grains.GetGrain<IWebChatVisitorGrain>(identity!["webchat:".Length..]), session);
    }

    /// <summary>Review WC3: a visitor whose conversation an agent answered stays established after "end chat" starts a new
    /// conversation (<c>newConversation</c>) they write in, which no agent has answered yet: the company's actual
    /// customer still uses the reserve once strangers spent the open share.</summary>
    [Fact]
    public async Task A_visitor_answered_in_an_earlier_conversation_keeps_the_reserve_after_starting_a_new_one()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:VerificationCodesPerDayPerWidget"] = "10",
            ["Channels:WebChat:VerificationCodesPerDayPerAddressGroup"] = "4",
            ["Channels:WebChat:WidgetBudgetReservedPercent"] = "20",
        });
        var (visitor, first) = await ChatterSessionAsync(rig, answered: true);
        var rotated = await rig.StartSessionAsync(first.Token, newConversation: true);
        Assert.NotEqual(first.ConversationId, rotated.ConversationId);
        var (sameVisitor, _) = await ChatterSessionAsync(rig, answered: false, rotated);
        Assert.Equal(visitor.GetPrimaryKeyString(), sameVisitor.GetPrimaryKeyString());
        // Strangers of two networks spend the open share (8 of 10).
        var n = 0;
        for (var i = 1; i <= 4; i++)
        {
            Assert.NotNull((await NewVisitor(rig).IssueCodeAsync($"r{++n}@example.com", null, $"203.0.113.{i}")).Code);
            Assert.NotNull((await NewVisitor(rig).IssueCodeAsync($"r{++n}@example.com", null, $"192.0.2.{i}")).Code);
        }
        Assert.Null((await NewVisitor(rig).IssueCodeAsync("late@example.com", null, "100.64.0.1")).Code);

        var issue = await visitor.IssueCodeAsync("customer@example.com", null, "100.64.0.2");

        Assert.NotNull(issue.Code);
    }

    /// <summary>wcfix8: strangers on one /24 who spend the network's code mails do not shut out a visitor of that network
    /// whose chat an agent answered: established visitors have the network's budget of their own.</summary>
    [Fact]
    public async Task Strangers_who_spend_their_networks_codes_do_not_shut_out_an_answered_visitor_of_that_network()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:VerificationCodesPerDayPerAddressGroup"] = "3",
        });
        for (var i = 1; i <= 3; i++)
            Assert.NotNull((await NewVisitor(rig).IssueCodeAsync($"r{i}@example.com", null, $"203.0.113.{i}")).Code);
        var shut = await NewVisitor(rig).IssueCodeAsync("r4@example.com", null, "203.0.113.4");
        Assert.Equal(WebChatBudgetKeys.WidgetGroup(WebChatRig.Widget, "203.0.113.0/24") + ":day", shut.RefusedBy);
        var customer = await ChatterAsync(rig, answered: true);

        var issue = await customer.IssueCodeAsync("customer@example.com", null, "203.0.113.200");

        Assert.NotNull(issue.Code);
        // A stranger of that network is still refused.
        Assert.Null((await NewVisitor(rig).IssueCodeAsync("r5@example.com", null, "203.0.113.5")).Code);
    }

    /// <summary>Review RB2: the hard bound on wrong codes for one address from one /24 holds for established visitors too
    /// (anyone can become established, so a bucket of their own doubled the guesses): once strangers reached it, an
    /// answered visitor's code to that address checked from that /24 is not compared either.</summary>
    [Fact]
    public async Task Established_guessers_share_their_networks_bound_on_wrong_codes()
    {
        const int bound = 6;
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:GuessesPerDayPerRecipientAndGroup"] = bound.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Channels:WebChat:VerificationCodesPerHourPerRecipient"] = "100",
            ["Channels:WebChat:VerificationTriesPerCode"] = "5",
        });
        const string owner = "owner@example.com";
        for (var i = 1; i <= 3; i++)
        {
            var guesser = NewVisitor(rig);
            var address = $"10.0.0.{i}";
            var code = (await guesser.IssueCodeAsync(owner, null, address)).Code;
            Assert.NotNull(code);
            var wrong = code == "000000" ? "000001" : "000000";
            for (var t = 0; t < 5; t++)
                if ((await guesser.CheckCodeAsync(wrong, address)).Outcome == CodeOutcome.NoCode)
                    break;
        }
        var late = NewVisitor(rig);
        var lateCode = (await late.IssueCodeAsync(owner, null, "10.0.0.100")).Code;
        Assert.NotNull(lateCode);
        Assert.Equal(CodeOutcome.NoCode, (await late.CheckCodeAsync(lateCode, "10.0.0.100")).Outcome);
        var established = await ChatterAsync(rig, answered: true);
        var ownCode = (await established.IssueCodeAsync(owner, null, "10.0.0.200")).Code;
        Assert.NotNull(ownCode);

        var guess = await established.CheckCodeAsync(ownCode == "000000" ? "000001" : "000000", "10.0.0.200");

        Assert.Equal(CodeOutcome.NoCode, guess.Outcome);
    }

    /// <summary>Review RB1: established visitors of a network do not share one bucket of code mails. Seven visitors on
    /// one /24 (some behind one IP) who each proved their own address ask for codes until refused; a customer an agent
    /// answered on that /24, and one behind the attackers' own IP, still get a code.</summary>
    [Fact]
    public async Task Visitors_who_made_themselves_established_do_not_spend_an_answered_customers_network_or_address_budget()
    {
        await using var rig = await WebChatRig.StartAsync();
        const string attackerIp = "203.0.113.66";
        var n = 0;
        for (var v = 0; v < 8; v++)
        {
            var attacker = NewVisitor(rig);
            await attacker.VerifiedAsync($"attacker{v}@example.com");
            var address = v % 2 == 0 ? attackerIp : $"203.0.113.{70 + v}";
            var issued = 0;
            while ((await attacker.IssueCodeAsync($"r{++n}@example.com", null, address)).Code is not null)
                Assert.True(++issued <= 20, "a visitor's codes are bounded");
        }

        var onNetwork = await (await ChatterAsync(rig, answered: true)).IssueCodeAsync("customer@example.com", null, "203.0.113.200");
        var onSameIp = await (await ChatterAsync(rig, answered: true)).IssueCodeAsync("other@example.com", null, attackerIp);

        Assert.NotNull(onNetwork.Code);
        Assert.NotNull(onSameIp.Code);
    }

    /// <summary>Review WV3: writing once in one's own conversation does not make a visitor established, so strangers from
    /// many networks who each send "hi" first cannot spend the reserve; and established visitors of one network use only
    /// their network's part of it.</summary>
    [Fact]
    public async Task Strangers_who_wrote_once_do_not_spend_the_reserve_and_one_network_does_not_drain_it()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:VerificationCodesPerDayPerWidget"] = "20",
            ["Channels:WebChat:VerificationCodesPerDayPerAddressGroup"] = "8",
            ["Channels:WebChat:WidgetBudgetReservedPercent"] = "20",
            ["Channels:WebChat:WidgetReservePercentPerAddressGroup"] = "50",
        });
        var n = 0;
        Task<CodeIssue> Ask(string address, IWebChatVisitorGrain? visitor = null) =>
            (visitor ?? NewVisitor(rig)).IssueCodeAsync($"r{++n}@example.com", null, address);

        // The open share (16 of 20) is spent by strangers of two networks.
        for (var i = 1; i <= 8; i++)
        {
            Assert.NotNull((await Ask($"203.0.113.{i}")).Code);
            Assert.NotNull((await Ask($"192.0.2.{i}")).Code);
        }
        // Strangers of four more networks who each wrote "hi" first are refused: the reserve (4) is not theirs.
        foreach (var address in new[] { "198.51.100.1", "100.64.0.1", "100.64.1.1", "100.64.2.1" })
        {
            var writer = await ChatterAsync(rig, answered: false);
            var refused = await Ask(address, writer);
            Assert.Null(refused.Code);
            Assert.Equal(WebChatBudgetKeys.Widget(WebChatRig.Widget) + ":day", refused.RefusedBy);
        }
        // Proven visitors of one network use its half of the reserve (2), then that network is refused...
        var network = new List<string?>();
        for (var i = 1; i <= 3; i++)
        {
            var proven = NewVisitor(rig);
            await proven.VerifiedAsync($"known{i}@example.com");
            network.Add((await Ask($"233.252.0.{i}", proven)).Code);
        }
        Assert.Equal(2, network.Count(c => c is not null));
        Assert.Null(network[2]);
        // ... while an answered visitor of another network still gets one of the rest.
        var answered = await ChatterAsync(rig, answered: true);
        Assert.NotNull((await Ask("198.18.0.1", answered)).Code);
    }

    /// <summary>Review KW4 and WV2: spare codes must not turn into thousands of guesses at one address, and guessers
    /// must not void the owner's right code. Ten addresses of one /24 each get a spare code for one recipient and guess
    /// with every try: the wrong codes accepted from that group in a day stay within
    /// <see cref="WebChatOptions.GuessesPerDayPerRecipientAndGroup"/>, and past it even a right code checked from that
    /// group is not taken; the owner, from another network, still proves the address.</summary>
    [Fact]
    public async Task Guessing_at_one_recipient_stays_within_the_daily_bound_per_network_and_does_not_void_the_owners_code()
    {
        const int bound = 12;
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:WrongCodesPerDayPerRecipient"] = "5",
            ["Channels:WebChat:GuessesPerDayPerRecipientAndGroup"] = bound.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Channels:WebChat:SpareCodesPerDayAfterWrongCodes"] = "1",
            ["Channels:WebChat:SpareCodesPerHourPerRecipientAndAddress"] = "1",
            ["Channels:WebChat:SpareCodesPerDayPerRecipientAndGroup"] = "100",
            ["Channels:WebChat:VerificationCodesPerHourPerRecipient"] = "100",
            ["Channels:WebChat:VerificationTriesPerCode"] = "5",
        });
        const string victim = "victim@example.com";
        for (var i = 1; i <= 10; i++)
        {
            var guesser = NewVisitor(rig);
            var address = $"10.0.0.{i}";
            var code = (await guesser.IssueCodeAsync(victim, null, address)).Code;
            if (code is null)
                continue;
            var wrong = code == "000000" ? "000001" : "000000";
            for (var t = 0; t < 5; t++)
            {
                var check = await guesser.CheckCodeAsync(wrong, address);
                if (check.Outcome == CodeOutcome.NoCode)
                    break;
                Assert.Equal(CodeOutcome.Wrong, check.Outcome);
            }
        }
        var wrongKey = WebChatBudgetKeys.WrongCodes(victim);
        var accepted = await rig.App.QueryAsync(db => db.WebChatBudgetEvents.CountAsync(e => e.Key == wrongKey));
        Assert.InRange(accepted, 5, bound);
        // Past the bound, a code to the address checked from that network is not even compared: the right one is refused too.
        var late = NewVisitor(rig);
        var lateCode = (await late.IssueCodeAsync(victim, null, "10.0.0.200")).Code;
        Assert.NotNull(lateCode);
        Assert.Equal(CodeOutcome.NoCode, (await late.CheckCodeAsync(lateCode, "10.0.0.200")).Outcome);
        // The owner, from another network, gets a code and proves the address with it.
        var owner = NewVisitor(rig);
        var ownCode = (await owner.IssueCodeAsync(victim, "Victim", Owner)).Code;
        Assert.NotNull(ownCode);
        var proved = await owner.CheckCodeAsync(ownCode, Owner);
        Assert.Equal((CodeOutcome.Verified, victim), (proved.Outcome, proved.Email));
    }

    /// <summary>Review WV1: a stranger who fills a recipient's shared budget and then takes spares from three more
    /// addresses of one network spends that network's spare total only: the owner, from elsewhere, still gets a code.
    /// Review WV8: the total holds with its default (3): a fourth spare from a fourth address of the network is refused.</summary>
    [Fact]
    public async Task Spares_taken_from_a_strangers_network_do_not_spend_the_owners_spares()
    {
        await using var rig = await WebChatRig.StartAsync();
        const string victim = "victim@example.com";
        for (var i = 0; i < 5; i++)
            Assert.NotNull((await NewVisitor(rig).IssueCodeAsync(victim, null, "10.0.0.1")).Code);
        var strangers = new[] { "2001:db8:1:1::/64", "2001:db8:1:2::/64", "2001:db8:1:3::/64", "2001:db8:1:4::/64" };
        foreach (var stranger in strangers[..3])
            Assert.NotNull((await NewVisitor(rig).IssueCodeAsync(victim, null, stranger)).Code);
        var fourth = await NewVisitor(rig).IssueCodeAsync(victim, null, strangers[3]);
        Assert.Null(fourth.Code);
        Assert.Equal(WebChatBudgetKeys.Recipient(victim), fourth.RefusedBy);

        var owner = NewVisitor(rig);
        var code = (await owner.IssueCodeAsync(victim, "Victim", "198.51.100.7")).Code;
        Assert.NotNull(code);
        Assert.Equal(CodeOutcome.Verified, (await owner.CheckCodeAsync(code, "198.51.100.7")).Outcome);
    }

    /// <summary>Review WV8: one request that passes both spare budgets of a recipient (its codes of the hour and its wrong
    /// codes are both used up) takes two places of the network's spare total (3 by default).</summary>
    [Fact]
    public async Task A_request_past_both_shared_budgets_takes_two_places_of_the_spare_total()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:VerificationCodesPerHourPerRecipient"] = "1",
            ["Channels:WebChat:WrongCodesPerDayPerRecipient"] = "1",
        });
        const string bob = "bob@example.com";
        var guesser = NewVisitor(rig);
        Assert.NotNull((await guesser.IssueCodeAsync(bob, null, "10.0.0.1")).Code);
        Assert.Equal(CodeOutcome.Wrong, (await guesser.CheckCodeAsync("1234567", "10.0.0.1")).Outcome);

        Assert.NotNull((await NewVisitor(rig).IssueCodeAsync(bob, null, "10.0.0.2")).Code);
        var totalKey = WebChatBudgetKeys.SpareTotal(bob, "10.0.0.0/24");
        Assert.Equal(2, await rig.App.QueryAsync(db => db.WebChatBudgetEvents.CountAsync(e => e.Key == totalKey)));
        // One place is left, and this request needs two.
        var refused = await NewVisitor(rig).IssueCodeAsync(bob, null, "10.0.0.3");
        Assert.Null(refused.Code);
        Assert.Equal(WebChatBudgetKeys.WrongCodes(bob), refused.RefusedBy);
        Assert.Equal(2, await rig.App.QueryAsync(db => db.WebChatBudgetEvents.CountAsync(e => e.Key == totalKey)));
    }
}
