using System.ComponentModel.DataAnnotations;

namespace Crm.Connectors.WebChat;

/// <summary>Deployment-wide limits of the web chat channel (<c>Channels:WebChat</c>); per-widget settings are in <see cref="WebChatSettings"/>.</summary>
public sealed class WebChatOptions
{
    public const string Section = "Channels:WebChat";

    /// <summary>A visitor token older than this is refused (the visitor starts afresh with a new identity).</summary>
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>A token older than this is replaced by a fresh one when the visitor comes back.</summary>
    public TimeSpan TokenRenewAfter { get; set; } = TimeSpan.FromDays(1);

    /// <summary>No token of a visitor is accepted this long after the visitor's first one, however often it was renewed
    /// (the visitor then starts afresh): a lifetime cap on rotating tokens.</summary>
    public TimeSpan TokenMaxAge { get; set; } = TimeSpan.FromDays(90);

    /// <summary>How long the token a renewal replaced may fetch its successor again, when the renewal's answer was lost (a
    /// page left mid-request, a dropped network): only that, never connect or read, and only until the successor is
    /// first used (review W1).</summary>
    public TimeSpan TokenRecoveryPeriod { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Email verification: how long a code is good, how many wrong tries a code takes before it is void, and how
    /// many codes a visitor, a client address and a recipient address may be sent per hour.</summary>
    public TimeSpan VerificationCodeLifetime { get; set; } = TimeSpan.FromMinutes(15);

    [Range(1, 20)]
    public int VerificationTriesPerCode { get; set; } = 5;

    [Range(1, 100)]
    public int VerificationCodesPerHourPerVisitor { get; set; } = 3;

    [Range(1, 10000)]
    public int VerificationCodesPerHourPerAddress { get; set; } = 10;

    [Range(1, 100)]
    public int VerificationCodesPerHourPerRecipient { get; set; } = 5;

    /// <summary>Code mails per widget (all visitors, all addresses) per hour and per day: the widget's mail account is the
    /// company's, so nobody can make it mail strangers in bulk.</summary>
    [Range(1, 100_000)]
    public int VerificationCodesPerHourPerWidget { get; set; } = 100;

    [Range(1, 1_000_000)]
    public int VerificationCodesPerDayPerWidget { get; set; } = 500;

    /// <summary>Wrong codes entered for one address by any visitors within a day; past it, no more codes to that address
    /// that day (guessing at a customer's address is bounded however many visitors try).</summary>
    [Range(1, 10_000)]
    public int WrongCodesPerDayPerRecipient { get; set; } = 20;

    /// <summary>When a recipient's codes of the hour (<see cref="VerificationCodesPerHourPerRecipient"/>, shared by all
    /// visitors) are used up, each client address may still have this many codes to it an hour, so a stranger who knows
    /// the address cannot keep its owner from proving it; a mail bomb from many addresses is still bounded by the
    /// per-address and per-widget caps.</summary>
    [Range(0, 100)]
    public int SpareCodesPerHourPerRecipientAndAddress { get; set; } = 1;

    /// <summary>When wrong codes for a recipient (<see cref="WrongCodesPerDayPerRecipient"/>, by anyone) stop codes to it,
    /// each client address may still have this many codes to it a day: guessing from many addresses costs one code
    /// (its <see cref="VerificationTriesPerCode"/> tries) per address and day, and the owner is not locked out.</summary>
    [Range(0, 100)]
    public int SpareCodesPerDayAfterWrongCodes { get; set; } = 1;

    /// <summary>Code mails per widget from one client address group (an IPv4 /24, an IPv6 /48) per hour and per day: a
    /// handful of addresses from one network cannot spend the widget's whole budget and shut verification off for every
    /// visitor (review KW3).</summary>
    [Range(1, 100_000)]
    public int VerificationCodesPerHourPerAddressGroup { get; set; } = 20;

    [Range(1, 1_000_000)]
    public int VerificationCodesPerDayPerAddressGroup { get; set; } = 50;

    /// <summary>The share (percent) of the widget's hour and day budgets kept for established visitors (who proved an
    /// address before, or whose conversation an agent answered; review WV3): strangers from many networks who spend the
    /// rest do not shut them out.</summary>
    [Range(0, 90)]
    public int WidgetBudgetReservedPercent { get; set; } = 20;

    /// <summary>The share (percent) of that reserve the established visitors of one client address group (an IPv4 /24,
    /// an IPv6 /48) may use together (at least one code), so one network cannot drain it (review WV3).</summary>
    [Range(1, 100)]
    public int WidgetReservePercentPerAddressGroup { get; set; } = 25;

    /// <summary>Spare codes (both kinds above) to one recipient from one client address group (an IPv4 /24, an IPv6 /48)
    /// together per day (review KW4, WV1): with the per-address spares alone, a stranger with many addresses could get
    /// codes without bound; counted per group, not per recipient, so a stranger who spends them does not spend the spares
    /// of the owner's network (a per-recipient total let three addresses lock the owner out again).</summary>
    [Range(0, 100)]
    public int SpareCodesPerDayPerRecipientAndGroup { get; set; } = 3;

    /// <summary>The hard bound on guessing (review KW4, WV2): once this many wrong codes for one address were entered
    /// from one client address group within a day, a code to that address checked from that group is void and is not
    /// compared. Counted per group, never for the address as a whole, so guessers elsewhere cannot void the owner's right
    /// code; the guessing at one address grows only with the groups the guesser controls: 15 in 10^6 a day per group.</summary>
    [Range(1, 100_000)]
    public int GuessesPerDayPerRecipientAndGroup { get; set; } = 15;

    /// <summary>Transcripts by email a visitor may ask for per hour.</summary>
    [Range(1, 100)]
    public int TranscriptsPerHourPerVisitor { get; set; } = 2;

    /// <summary>Longest chat message, in characters.</summary>
    [Range(1, 20000)]
    public int MaxMessageChars { get; set; } = 4000;

    /// <summary>Largest SignalR frame a visitor may send (messages are text; uploads go over HTTP).</summary>
    [Range(1024, 1024 * 1024)]
    public int MaxHubMessageBytes { get; set; } = 32 * 1024;

    /// <summary>HTTP requests (config, sessions, uploads, hub negotiation) per client address per minute.</summary>
    [Range(1, 100000)]
    public int RequestsPerMinutePerAddress { get; set; } = 120;

    /// <summary>Chat messages a visitor may send in a burst, and how many more per minute after it.</summary>
    [Range(1, 10000)]
    public int MessageBurstPerVisitor { get; set; } = 10;

    [Range(1, 10000)]
    public int MessagesPerMinutePerVisitor { get; set; } = 20;

    /// <summary>Messages of the conversation sent to a returning visitor.</summary>
    [Range(1, 1000)]
    public int HistorySize { get; set; } = 100;

    /// <summary>New visitors and new conversations (<c>POST /sessions</c> without a valid token, or asking for a new
    /// conversation) one client address may start in a burst, and how many more per hour after it: each one can open a
    /// ticket, so a script that mints sessions to reset the per-visitor budgets runs out here.</summary>
    [Range(1, 100000)]
    public int NewSessionBurstPerAddress { get; set; } = 30;

    [Range(1, 1000000)]
    public int NewSessionsPerHourPerAddress { get; set; } = 60;

    /// <summary>Open visitor connections (tabs) of one visitor on this node.</summary>
    [Range(1, 1000)]
    public int MaxConnectionsPerVisitor { get; set; } = 10;

    /// <summary>Open visitor connections from one client address on this node (an office or a mobile carrier's NAT can
    /// put many visitors behind one address).</summary>
    [Range(1, 1000000)]
    public int MaxConnectionsPerAddress { get; set; } = 200;

    /// <summary>Open visitor connections on this node. Hub connections do not count against the HTTP in-flight limits
    /// (Http:Limits), so this is what bounds them; a full node refuses new visitors, never agents or the API.</summary>
    [Range(1, 10000000)]
    public int MaxConnections { get; set; } = 10000;

    /// <summary>Bytes of files one client address may upload per hour, and one visitor per day.</summary>
    [Range(1, long.MaxValue)]
    public long UploadBytesPerHourPerAddress { get; set; } = 200L * 1024 * 1024;

    [Range(1, long.MaxValue)]
    public long UploadBytesPerDayPerVisitor { get; set; } = 50L * 1024 * 1024;

    /// <summary>How long a node's subscription to a conversation's pushes lives without renewal (renewed at a third of it).</summary>
    public TimeSpan PushSubscriptionLifetime { get; set; } = TimeSpan.FromMinutes(3);
}
