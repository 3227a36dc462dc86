using Crm.Connectors.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Crm.Connectors.WebChat;

/// <summary>What the server holds about a visitor's tokens: the generation they must carry, the generation a renewal
/// replaced while its holder may still fetch the successor (review W1: the renewal's answer may have been lost), a block,
/// and the proven email address.</summary>
[GenerateSerializer, Immutable, Alias("crm.webchat.VisitorStanding")]
public sealed record VisitorStanding(
    [property: Id(0)] int Generation,
    [property: Id(1)] int? RecoverableGeneration = null,
    [property: Id(2)] DateTimeOffset? RecoverUntil = null,
    [property: Id(3)] bool Blocked = false,
    [property: Id(4)] string? BlockReason = null,
    [property: Id(5)] string? VerifiedEmail = null,
    [property: Id(6)] string? RecoverSession = null)
{
    /// <summary>Whether a token of <paramref name="generation"/> may connect, read and write (blocks are checked apart: they
    /// get their own message). Only the current generation: a replaced token never connects or reads again.</summary>
    public bool Accepts(int generation) => generation == Generation;

    /// <summary>Whether a replaced token of <paramref name="generation"/> may fetch its successor again at the session
    /// endpoint (and nothing else): the generation just before the current one, until the successor is first used or
    /// <see cref="WebChatOptions.TokenRecoveryPeriod"/> after the renewal.</summary>
    public bool CanRecover(int generation, DateTimeOffset now) =>
        generation == RecoverableGeneration && generation == Generation - 1 && RecoverUntil > now;

    /// <summary>A replaced token may still fetch its successor: the first use of a current token closes that.</summary>
    public bool RecoveryOpen => RecoverableGeneration is not null;

    /// <summary>Whether the token is of the current generation (only those may be renewed).</summary>
    public bool IsCurrent(int generation) => generation == Generation;
}

/// <summary>
/// One visitor of one widget (key <c>{widget}/{visitorId}</c>): the single writer of the visitor's standing, cached for
/// the checks on every hub call. Renewal raises the generation (the replaced token can only fetch its successor again,
/// until the successor is first used or <see cref="WebChatOptions.TokenRecoveryPeriod"/>); an agent's or admin's revoke
/// raises it with no recovery (every token of the visitor is refused at once); a block refuses the visitor at the
/// session endpoint, at connect and at every call.
/// </summary>
public interface IWebChatVisitorGrain : IGrainWithStringKey
{
    [ReadOnly]
    Task<VisitorStanding> GetAsync();

    /// <summary>A renewal of a token of <paramref name="fromGeneration"/>: raises the generation when that one is current.
    /// With <paramref name="recoverable"/>, the replaced token may fetch its successor again until the successor is used
    /// (<see cref="SuccessorUsedAsync"/>) or the recovery period ends; <paramref name="newSession"/> is the conversation
    /// a <c>newConversation</c> rotation moves to, kept so the recovered successor names it (review WV6).</summary>
    Task<VisitorStanding> RotateAsync(int fromGeneration, bool recoverable = true, string? newSession = null);

    /// <summary>A token of <paramref name="generation"/> was used (connect, a hub call, an upload, the session endpoint):
    /// when it is the current one, the replaced token can no longer recover it.</summary>
    Task<VisitorStanding> SuccessorUsedAsync(int generation);

    /// <summary>Every token of the visitor is refused from now on (the visitor starts afresh as a new visitor).</summary>
    Task<VisitorStanding> RevokeAsync();

    Task<VisitorStanding> BlockAsync(bool blocked, string? reason);

    /// <summary>Records the address the visitor proved.</summary>
    Task<VisitorStanding> VerifiedAsync(string email);

    /// <summary>A new code for <paramref name="email"/> (it replaces any earlier one), or the budget that refused and the
    /// wait: per visitor, per client address (<paramref name="addressKey"/>), per recipient, per widget, and wrong codes
    /// entered for the recipient. The pending code (its hash) and the budgets are in the store: a restart or another
    /// node neither loses a code nor resets a budget.</summary>
    /// <remarks>A visitor with a conversation an agent answered (any of the visitor's conversations: review WC3), or who
    /// proved an address before, is established and may use the widget budgets' reserved share (its network's part of
    /// it; review WV3).</remarks>
    Task<CodeIssue> IssueCodeAsync(string email, string? name, string addressKey);

    /// <summary>Checks a code; a right one records the address as proven. Each code takes a few wrong tries, then it is void.
    /// <paramref name="addressKey"/>: the checking client's address; the hard bound on guessing counts per its group.</summary>
    Task<CodeCheck> CheckCodeAsync(string code, string? addressKey = null);
}

[GenerateSerializer, Immutable, Alias("crm.webchat.CodeIssue")]
public sealed record CodeIssue([property: Id(0)] string? Code, [property: Id(1)] TimeSpan? RetryAfter, [property: Id(2)] string? RefusedBy = null);

public enum CodeOutcome
{
    Verified,
    Wrong,
    /// <summary>No code is pending, it expired, or it took its last wrong try.</summary>
    NoCode,
}

[GenerateSerializer, Immutable, Alias("crm.webchat.CodeCheck")]
public sealed record CodeCheck([property: Id(0)] CodeOutcome Outcome, [property: Id(1)] string? Email = null, [property: Id(2)] string? Name = null, [property: Id(3)] int TriesLeft = 0);

internal sealed class WebChatVisitorGrain(IWebChatVisitorStore store, IOptions<WebChatOptions> options, TimeProvider time) : Grain, IWebChatVisitorGrain
{
    private WebChatVisitorState _state = null!;
    private string WidgetId => _state.WidgetId;

    private string VisitorId => _state.VisitorId;

    internal static string Key(string widgetId, string visitorId) => widgetId + "/" + visitorId;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var (widget, visitor) = slash > 0 ? (key[..slash], key[(slash + 1)..]) : throw new InvalidOperationException($"'{key}' is not a visitor key (widget/visitor).");
        _state = await store.FindAsync(widget, visitor, cancellationToken) ?? new WebChatVisitorState { WidgetId = widget, VisitorId = visitor };
    }

    public Task<VisitorStanding> GetAsync() => Task.FromResult(Standing());

    // The stored GraceGeneration / GraceUntil columns hold the recoverable generation and its deadline.
    public Task<VisitorStanding> RotateAsync(int fromGeneration, bool recoverable = true, string? newSession = null) =>
        fromGeneration != _state.Generation || _state.Blocked
            ? Task.FromResult(Standing())
            : SaveAsync(_state with
            {
                Generation = _state.Generation + 1,
                GraceGeneration = recoverable ? _state.Generation : null,
                GraceUntil = recoverable ? time.GetUtcNow() + options.Value.TokenRecoveryPeriod : null,
                GraceSession = recoverable ? newSession : null,
            });

    public Task<VisitorStanding> SuccessorUsedAsync(int generation) =>
        generation == _state.Generation && _state.GraceGeneration is not null
            ? SaveAsync(_state with { GraceGeneration = null, GraceUntil = null, GraceSession = null })
            : Task.FromResult(Standing());

    public Task<VisitorStanding> RevokeAsync() =>
        SaveAsync(_state with { Generation = _state.Generation + 1, GraceGeneration = null, GraceUntil = null, GraceSession = null });

    public Task<VisitorStanding> BlockAsync(bool blocked, string? reason) =>
        SaveAsync(_state with { Blocked = blocked, BlockReason = blocked ? reason : null });

    public Task<VisitorStanding> VerifiedAsync(string email) =>
        SaveAsync(_state with { VerifiedEmail = email, VerifiedAt = time.GetUtcNow() });

    public async Task<CodeIssue> IssueCodeAsync(string email, string? name, string addressKey)
    {
        var o = options.Value;
        // Established visitors may use the reserved share of the widget's budgets (review KW3): strangers who spend the
        // open share from many networks do not shut out visitors who already talk with the company (see
        // EstablishedAsync). Each address group has its own part of the reserve, so established visitors of one network
        // cannot drain it either.
        var established = await EstablishedAsync();
        var group = ClientAddresses.GroupOf(addressKey);
        // An established visitor's per-network and per-address budgets are their own (review RB1): a stranger, or another
        // established visitor, on the same /24 or /48 or behind the same IP (one office, one carrier-grade NAT) who spends
        // those codes never spends this visitor's.
        var networkKey = WebChatBudgetKeys.WidgetGroup(WidgetId, OwnBucket(group, established));
        StoredBudget WidgetBudget(string key, int limit, TimeSpan window)
        {
            var reserved = limit * o.WidgetBudgetReservedPercent / 100;
            return established && reserved > 0
                ? new StoredBudget(key, limit - reserved, window, WebChatBudgetKeys.Reserve(key, group), Math.Max(1, reserved * o.WidgetReservePercentPerAddressGroup / 100),
                    WebChatBudgetKeys.Reserve(key), reserved, window)
                : new StoredBudget(key, limit - reserved, window);
        }
        var day = TimeSpan.FromDays(1);
        var spareTotal = WebChatBudgetKeys.SpareTotal(email, group);
        var now = time.GetUtcNow();
        var hour = TimeSpan.FromHours(1);
        var code = System.Security.Cryptography.RandomNumberGenerator.GetInt32(0, 1_000_000).ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
        var refusal = await store.IssueCodeAsync(new PendingCodeRequest(WidgetId, VisitorId, email, name, Hash(code), now, now + o.VerificationCodeLifetime, o.VerificationTriesPerCode,
        [
            new StoredBudget(WebChatBudgetKeys.Visitor(WidgetId, VisitorId), o.VerificationCodesPerHourPerVisitor, hour),
            new StoredBudget(OwnBucket(WebChatBudgetKeys.Address(addressKey), established), o.VerificationCodesPerHourPerAddress, hour),
            // Per recipient, shared by every visitor (a mail bomb is bounded), with one spare code an hour per client
            // address: a stranger who asks for codes to someone's address cannot lock its owner out (review W2).
            // The spares of all addresses of one group together are capped per recipient and day (review KW4), per group
            // so a stranger's network never spends the owner's network's spares (review WV1).
            new StoredBudget(WebChatBudgetKeys.Recipient(email), o.VerificationCodesPerHourPerRecipient, hour,
                WebChatBudgetKeys.Spare(WebChatBudgetKeys.Recipient(email), addressKey), o.SpareCodesPerHourPerRecipientAndAddress,
                spareTotal, o.SpareCodesPerDayPerRecipientAndGroup, day),
            // Per address group first: one network spends its own part, never the whole widget's (review KW3).
            new StoredBudget(networkKey, o.VerificationCodesPerHourPerAddressGroup, hour),
            new StoredBudget(networkKey + ":day", o.VerificationCodesPerDayPerAddressGroup, day),
            WidgetBudget(WebChatBudgetKeys.Widget(WidgetId), o.VerificationCodesPerHourPerWidget, hour),
            WidgetBudget(WebChatBudgetKeys.Widget(WidgetId) + ":day", o.VerificationCodesPerDayPerWidget, day),
            // Wrong codes for the recipient by anyone stop further codes to it (guessing is bounded), except one spare
            // code a day per client address: wrong guesses from elsewhere do not lock the owner out (review W2). The
            // hard bound on guessing is GuessesPerDayPerRecipientAndGroup, enforced per group when a code is checked
            // (review WV2): it never voids a code checked from another network.
            new StoredBudget(WebChatBudgetKeys.WrongCodes(email), o.WrongCodesPerDayPerRecipient, day,
                WebChatBudgetKeys.Spare(WebChatBudgetKeys.WrongCodes(email), addressKey), o.SpareCodesPerDayAfterWrongCodes,
                spareTotal, o.SpareCodesPerDayPerRecipientAndGroup, day),
        ]));
        return refusal is null ? new CodeIssue(code, null) : new CodeIssue(null, refusal.RetryAfter, refusal.Key);
    }

    public async Task<CodeCheck> CheckCodeAsync(string code, string? addressKey = null)
    {
        var o = options.Value;
        // One bucket of wrong codes per recipient and group for everyone, established or not (review RB2): anyone can
        // become established, so a bucket of their own would only raise the hard bound on guessing.
        var group = ClientAddresses.GroupOf(addressKey ?? "unknown");
        var check = await store.CheckCodeAsync(WidgetId, VisitorId, Hash(code), time.GetUtcNow(), group, o.GuessesPerDayPerRecipientAndGroup);
        switch (check.Outcome)
        {
            case StoredCodeOutcome.Verified:
                await VerifiedAsync(check.Email!);
                return new CodeCheck(CodeOutcome.Verified, check.Email, check.Name);
            case StoredCodeOutcome.Wrong:
                return new CodeCheck(CodeOutcome.Wrong, TriesLeft: check.TriesLeft);
            default:
                return new CodeCheck(CodeOutcome.NoCode);
        }
    }

    /// <summary>Established means a proven address, or a conversation of this visitor that an agent answered (review WV3:
    /// having written once costs a script one message, so it proves nothing), any of them: "end chat" starts a new
    /// conversation, and the customer is still one the company talks with (review WC3). Neither can a stranger get
    /// cheaply: a proven address costs a code from these budgets, an answer costs an agent's reply.</summary>
    private async Task<bool> EstablishedAsync() => _state.VerifiedEmail is not null || await store.IsVisitorAnsweredAsync(this.GetPrimaryKeyString());

    /// <summary>The bucket of a per-network or per-address bound on code mails: an established visitor has one of their
    /// own (review RB1; one shared by all established visitors of a network let an attacker who made a few visitors
    /// established spend it), as Chatwoot's or Zendesk's widget never locks a known customer out for what another client
    /// of the same network did. They are still bounded by the same amounts, and by the per-visitor, per-recipient and
    /// widget budgets (the reserve's part per network included).</summary>
    private string OwnBucket(string key, bool established) => established ? key + "+visitor:" + VisitorId : key;

    private static byte[] Hash(string code) => System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(code));

    private async Task<VisitorStanding> SaveAsync(WebChatVisitorState next)
    {
        next = next with { UpdatedAt = time.GetUtcNow() };
        await store.SaveAsync(next);
        _state = next;
        return Standing();
    }

    private VisitorStanding Standing() =>
        new(_state.Generation, _state.GraceGeneration, _state.GraceUntil, _state.Blocked, _state.BlockReason, _state.VerifiedEmail, _state.GraceSession);
}

internal static class VisitorStandings
{
    /// <summary>The visitor's standing for a token of <paramref name="generation"/> that is about to be used: a current
    /// token's first use ends the recovery of the token it replaced (review W1). Null when the token is not accepted.</summary>
    public static async Task<VisitorStanding> UseAsync(this IWebChatVisitorGrain grain, int generation)
    {
        var standing = await grain.GetAsync();
        return standing.Accepts(generation) && !standing.Blocked && standing.RecoveryOpen ? await grain.SuccessorUsedAsync(generation) : standing;
    }
}
