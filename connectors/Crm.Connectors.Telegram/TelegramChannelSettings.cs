using System.Text.RegularExpressions;
using Crm.Connectors.Abstractions;

namespace Crm.Connectors.Telegram;

/// <summary>How a bot receives its updates.</summary>
public enum TelegramMode
{
    /// <summary>getUpdates long polling: for installs without a public HTTPS address.</summary>
    Polling,
    /// <summary>Telegram posts each update to POST /connectors/telegram/{account}/webhook.</summary>
    Webhook,
}

/// <summary>What a bot does with messages from groups, supergroups and channels.</summary>
public enum TelegramGroupHandling
{
    /// <summary>Kept raw with a reason, no ticket (the default: a support bot added to a chat room must not flood the queues).</summary>
    Ignore,
    /// <summary>One conversation per group; the group is the customer and each message names its author.</summary>
    Conversation,
}

/// <summary>The settings of a Telegram channel account (one bot; the admin API's <c>settings</c> for kind "telegram").</summary>
public sealed partial record TelegramChannelSettings : IChannelSettings
{
    /// <summary>The bot token from @BotFather. Secret: encrypted at rest, never returned; a PUT without it keeps it.</summary>
    [SecretSetting]
    public string? Token { get; init; }

    public TelegramMode Mode { get; init; } = TelegramMode.Polling;

    /// <summary>The X-Telegram-Bot-Api-Secret-Token Telegram sends with each webhook call (1-256 of A-Z a-z 0-9 _ -).
    /// Required in webhook mode: the endpoint refuses every call while it is missing.</summary>
    [SecretSetting]
    public string? SecretToken { get; init; }

    /// <summary>This service's public base URL ("https://support.example.com"); in webhook mode the connector registers
    /// {publicBaseUrl}/connectors/telegram/{account}/webhook with setWebhook when the bot starts. Without it the
    /// webhook must be registered by whoever runs the proxy in front of us.</summary>
    public string? PublicBaseUrl { get; init; }

    /// <summary>The answer to /start; none: /start is not answered.</summary>
    public string? WelcomeText { get; init; }

    public TelegramGroupHandling Groups { get; init; } = TelegramGroupHandling.Ignore;

    /// <summary>The bot's @username as Telegram's getMe answered when the account was last saved enabled (shown in the
    /// admin API). Filled in by the service; a value given in a PUT is replaced.</summary>
    public string? BotUsername { get; init; }

    public IEnumerable<SettingsProblem> Validate()
    {
        // Token and secret token may be absent here: a PUT that leaves a secret out keeps the stored one. The bot's
        // start checks they are there (getMe) and reports it in the account's health.
        if (Token is not null && !TokenShape().IsMatch(Token))
            yield return new SettingsProblem("token", "token is not a bot token (\"123456:ABC-DEF…\" from @BotFather).");
        if (SecretToken is not null && !SecretTokenShape().IsMatch(SecretToken))
            yield return new SettingsProblem("secretToken", "secretToken is 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule).");
        if (PublicBaseUrl is not null && (!Uri.TryCreate(PublicBaseUrl, UriKind.Absolute, out var url) || url.Scheme != "https"
                                          || !string.IsNullOrEmpty(url.Query) || !string.IsNullOrEmpty(url.Fragment) || PublicBaseUrl.Length > 400))
            yield return new SettingsProblem("publicBaseUrl", "publicBaseUrl must be an absolute https URL without query (Telegram calls only https webhooks).");
        if (WelcomeText is { Length: > 4096 })
            yield return new SettingsProblem("welcomeText", "welcomeText is at most 4096 characters (one Telegram message).");
    }

    /// <summary>The webhook address registered with Telegram.</summary>
    public string? WebhookUrl(string accountId) =>
        PublicBaseUrl is null ? null : $"{PublicBaseUrl.TrimEnd('/')}/connectors/telegram/{accountId}/webhook";

    [GeneratedRegex(@"^\d{1,20}:[A-Za-z0-9_-]{20,200}$", RegexOptions.CultureInvariant)]
    private static partial Regex TokenShape();

    [GeneratedRegex(@"^[A-Za-z0-9_-]{1,256}$", RegexOptions.CultureInvariant)]
    private static partial Regex SecretTokenShape();
}
