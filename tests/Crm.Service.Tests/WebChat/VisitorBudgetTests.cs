using Crm.Connectors.Abstractions;
using Crm.Connectors.WebChat;

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
}
