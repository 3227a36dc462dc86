namespace Crm.Connectors.Abstractions;

/// <summary>
/// What the server keeps about one web chat visitor (a widget's visitor id), written only when it differs from a new
/// visitor's: the token generation (tokens of an older one are refused), whether the visitor is blocked, and the email
/// address the visitor proved. Drive-by visitors have no row.
/// </summary>
public sealed record WebChatVisitorState
{
    public required string WidgetId { get; init; }
    public required string VisitorId { get; init; }

    /// <summary>Tokens carry the generation they were issued in; only this one is accepted. Renewal and revocation raise it.</summary>
    public int Generation { get; init; }

    /// <summary>The generation a renewal replaced: its tokens may fetch their successor again (the renewal's answer was
    /// lost) until <see cref="GraceUntil"/> or until the successor is first used (then both are cleared); nothing else.</summary>
    public int? GraceGeneration { get; init; }
    public DateTimeOffset? GraceUntil { get; init; }

    /// <summary>The conversation (session id) a <c>newConversation</c> rotation moved the visitor to, while its replaced
    /// token may still recover (review WV6: the successor is handed back with this conversation); null for a renewal.</summary>
    public string? GraceSession { get; init; }

    public bool Blocked { get; init; }
    public string? BlockReason { get; init; }

    /// <summary>The address the visitor proved with a code sent to it; null until then.</summary>
    public string? VerifiedEmail { get; init; }
    public DateTimeOffset? VerifiedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>The store of <see cref="WebChatVisitorState"/> (Infrastructure), read and written by the visitor grain only.</summary>
public interface IWebChatVisitorStore
{
    Task<WebChatVisitorState?> FindAsync(string widgetId, string visitorId, CancellationToken cancellationToken = default);

    Task SaveAsync(WebChatVisitorState state, CancellationToken cancellationToken = default);

    /// <summary>Stores a new pending email code for the visitor (replacing any earlier one) when every budget allows one
    /// more code, and counts it in each; else changes nothing and names the first budget that refused. In one write
    /// transaction, so the budgets hold across restarts and across every node sharing the store.</summary>
    Task<BudgetRefusal?> IssueCodeAsync(PendingCodeRequest request, CancellationToken cancellationToken = default);

    /// <summary>Checks a code against the visitor's pending one: a right code is used up; a wrong one costs a try (the
    /// code is void after its last) and counts in <see cref="WebChatBudgetKeys.WrongCodes"/> of its address.</summary>
    /// <remarks>A wrong code counts in <see cref="WebChatBudgetKeys.WrongCodesFromGroup"/> of the checking client's address
    /// group (<paramref name="group"/>) too. Once <paramref name="wrongCodesPerDayPerGroup"/> wrong codes for the code's
    /// address were entered from that group within a day, a code checked from it is void without being compared: the
    /// hard bound on guessing, per group, so guessing from other networks never voids the owner's right code (review WV2).</remarks>
    Task<StoredCodeCheck> CheckCodeAsync(string widgetId, string visitorId, byte[] hash, DateTimeOffset now, string group, int wrongCodesPerDayPerGroup, CancellationToken cancellationToken = default);

    /// <summary>The identity value (<c>{widget}/{visitorId}</c>) of the customer of a web chat conversation (thread key =
    /// the session id), or null when the conversation does not exist (the visitor has not written yet).</summary>
    Task<string?> FindConversationIdentityAsync(string widgetId, string threadKey, CancellationToken cancellationToken = default);

    /// <summary>Whether any web chat conversation of <paramref name="visitorKey"/> (<c>{widget}/{visitorId}</c>) has a stored
    /// agent reply: such a visitor talks with the company (review WV3), also after starting a new conversation (review WC3).</summary>
    Task<bool> IsVisitorAnsweredAsync(string visitorKey, CancellationToken cancellationToken = default);
}

/// <summary>At most <see cref="Limit"/> events of <see cref="Key"/> within <see cref="Window"/> (a sliding window kept in the store).
/// A budget shared by everyone (all visitors asking for one recipient) can be spent by a stranger; <see cref="SpareKey"/>
/// keeps a path through for the rest: when the shared budget is used up, a request still passes while its own spare key
/// (per recipient and client address) has fewer than <see cref="SpareAllowance"/> events in the window, and it counts there.
/// <see cref="SpareTotalKey"/> bounds the spares of every address of one address group together (per recipient and group,
/// <see cref="SpareTotalLimit"/> within <see cref="SpareTotalWindow"/>), so many addresses of one network cannot turn
/// spares into thousands of codes (review KW4), and a stranger's network cannot spend the owner's (review WV1).</summary>
public sealed record StoredBudget(string Key, int Limit, TimeSpan Window, string? SpareKey = null, int SpareAllowance = 0,
    string? SpareTotalKey = null, int SpareTotalLimit = int.MaxValue, TimeSpan SpareTotalWindow = default);

/// <summary>The budget that refused, and when it allows one more.</summary>
public sealed record BudgetRefusal(string Key, TimeSpan RetryAfter);

public sealed record PendingCodeRequest(
    string WidgetId,
    string VisitorId,
    string Email,
    string? Name,
    byte[] Hash,
    DateTimeOffset Now,
    DateTimeOffset Expires,
    int Tries,
    IReadOnlyList<StoredBudget> Budgets);

public enum StoredCodeOutcome
{
    Verified,
    Wrong,
    /// <summary>No code is pending, it expired, or it took its last wrong try.</summary>
    NoCode,
}

public sealed record StoredCodeCheck(StoredCodeOutcome Outcome, string? Email = null, string? Name = null, int TriesLeft = 0);

/// <summary>Keys of the stored budgets of email codes.</summary>
public static class WebChatBudgetKeys
{
    public static string Visitor(string widgetId, string visitorId) => $"code-visitor:{widgetId}/{visitorId}";

    public static string Address(string addressKey) => "code-address:" + addressKey;

    public static string Recipient(string email) => "code-recipient:" + email;

    /// <summary>Every code mail of a widget (it goes out through the company's own mail account).</summary>
    public static string Widget(string widgetId) => "code-widget:" + widgetId;

    /// <summary>The codes of a widget asked for from one client address group (<see cref="ClientAddresses.GroupOf"/>: an
    /// IPv4 /24, an IPv6 /48): a handful of addresses cannot spend the widget's whole budget (review KW3).</summary>
    public static string WidgetGroup(string widgetId, string group) => $"code-widget-group:{widgetId}|{group}";

    /// <summary>Spare codes to one recipient from every client address of one address group together (review KW4, WV1).</summary>
    public static string SpareTotal(string email, string group) => $"code-spare-total:{email}|{group}";

    /// <summary>Wrong codes entered for an address, by any visitor: guessing at one address is bounded across visitors.</summary>
    public static string WrongCodes(string email) => "code-wrong:" + email;

    /// <summary>Wrong codes entered for an address from one client address group (<see cref="ClientAddresses.GroupOf"/>):
    /// the hard bound on guessing counts per group, so guessers elsewhere cannot void the owner's right code (review WV2).</summary>
    public static string WrongCodesFromGroup(string email, string group) => $"code-wrong-group:{email}|{group}";

    /// <summary>The spare of a shared budget used by one client address (see <see cref="StoredBudget.SpareKey"/>): a
    /// stranger who spent a recipient's shared budget from their address does not spend the recipient's own spare.</summary>
    public static string Spare(string budgetKey, string addressKey) => $"code-spare:{budgetKey}|{addressKey}";

    /// <summary>The reserved share of a widget budget (<paramref name="budgetKey"/>) used by established visitors, in all
    /// or (with <paramref name="group"/>) from one client address group (review WV3).</summary>
    public static string Reserve(string budgetKey, string? group = null) => group is null ? $"code-reserve:{budgetKey}" : $"code-reserve-group:{budgetKey}|{group}";
}
