using System.ComponentModel.DataAnnotations;

namespace Crm.Connectors.Telegram;

/// <summary>Deployment-wide settings of the Telegram channel (section <c>Channels:Telegram</c>); each bot's own settings
/// are a channel account's <see cref="TelegramChannelSettings"/>.</summary>
public sealed class TelegramChannelOptions
{
    public const string Section = "Channels:Telegram";

    /// <summary>The Bot API server; null is Telegram's (https://api.telegram.org). A self-hosted telegram-bot-api
    /// server, or the tests' local fake, goes here (Telegram.Bot's documented baseUrl option).</summary>
    public string? ApiBaseUrl { get; set; }

    /// <summary>getUpdates long-poll timeout: how long Telegram holds a poll open when nothing is new.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:30")]
    public TimeSpan PollTimeout { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>Updates fetched per getUpdates (Telegram allows 1-100).</summary>
    [Range(1, 100)]
    public int PollLimit { get; set; } = 100;

    /// <summary>Largest webhook body accepted; Telegram's updates are a few KiB.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxWebhookBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Files larger than this are not fetched (the Bot API's getFile limit is 20 MB); the agent gets a note instead.</summary>
    [Range(1, long.MaxValue)]
    public long MaxFileBytes { get; set; } = 20L * 1024 * 1024;

    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan FirstReconnectDelay { get; set; } = TimeSpan.FromSeconds(1);

    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A 429 whose retry_after is at most this is waited out within the send; a longer one returns the
    /// message to the outbox (Retry) and holds the bot's other sends until it has passed.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan MaxInlineRetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest file a bot may send (the Bot API's multipart upload limit is 50 MB; a self-hosted Bot API server
    /// allows 2000 MB). A reply with a larger file fails before anything is sent. Photos above 10 MB go as documents.</summary>
    [Range(1, 2000L * 1024 * 1024)]
    public long MaxUploadBytes { get; set; } = 50L * 1024 * 1024;

    /// <summary>Timeout of one Bot API call other than the long poll.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>A file download may take RequestTimeout plus its size at this rate; a stalled or very slow download is
    /// cut off then (and the update counts a failed attempt), instead of holding the bot's reader.</summary>
    [Range(1024, long.MaxValue)]
    public long MinDownloadBytesPerSecond { get; set; } = 64 * 1024;

    /// <summary>An update whose handling fails this many times in a row (a download that always times out, a hand-off
    /// that always throws) is kept raw with the last error and acknowledged, so the updates behind it go on.</summary>
    [Range(1, 1000)]
    public int MaxUpdateAttempts { get; set; } = 5;

    /// <summary>After a failed "last received" health write (a busy store), the next attempt waits this long instead of
    /// every following update adding a write to the store that is already busy (review IN3).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ReceivedRetryDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long updates that are not customer messages (ignored groups, service messages, reactions, member
    /// changes, /start and button answers) are kept raw before they are deleted. The raw updates carry the names and
    /// texts of people who never contacted support. Answers to /start and buttons are kept at least two days
    /// (Telegram redelivers for 24 hours), so a redelivery is not answered twice.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "3650.00:00:00")]
    public TimeSpan IgnoredRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Webhook mode: Telegram's max_connections (parallel deliveries; its default is 40). Each delivery may
    /// hold a file of up to MaxFileBytes in memory.</summary>
    [Range(1, 100)]
    public int WebhookMaxConnections { get; set; } = 8;

    /// <summary>Webhook calls per second per bot that carry its secret token (a token bucket holding
    /// <see cref="WebhookBurst"/>); past it the call is answered 429 and Telegram delivers it again later. Well above
    /// what <see cref="WebhookMaxConnections"/> parallel deliveries produce when Telegram drains a backlog (a 429 there
    /// would hold that chat's later updates behind a retry): it bounds only someone who has the secret.</summary>
    [Range(1, 10_000)]
    public int WebhookRequestsPerSecond { get; set; } = 1000;

    [Range(1, 100_000)]
    public int WebhookBurst { get; set; } = 2000;

    /// <summary>Webhook mode: how often getWebhookInfo is asked whether Telegram can deliver (its last error, the
    /// updates waiting); a delivery error goes to the account's health.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan WebhookCheckInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The welcome text is sent to one chat at most once per this period, however often /start comes.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan WelcomeInterval { get; set; } = TimeSpan.FromHours(1);
}
