using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.Options;
using Telegram.Bot;
using Telegram.Bot.Exceptions;

namespace Crm.Connectors.Telegram;

/// <summary>
/// Run by the admin API before a bot's account is saved: getMe with the token (through the configured Bot API base
/// URL). A token Telegram refuses, or a Telegram that cannot be reached, refuses the save in Telegram's words, so a
/// typo shows at once rather than later in the health; the bot's @username is stored with the settings. A disabled
/// account is not checked (an admin must be able to switch off a bot whose token was revoked); it keeps the username
/// only while the token is the one it was read with.
/// </summary>
internal sealed class TelegramSettingsCheck(TelegramBots bots, IOptions<TelegramChannelOptions> options, TimeProvider time) : IChannelSettingsCheck
{
    public ChannelKind Kind => ChannelKind.Telegram;

    public async Task<ChannelSettingsVerdict> CheckAsync(string accountId, IChannelSettings settings, IChannelSettings? stored, bool enabled, CancellationToken cancellationToken)
    {
        var bot = (TelegramChannelSettings)settings;
        var before = stored as TelegramChannelSettings;
        if (!enabled)
            return new(bot with { BotUsername = before is not null && before.Token == bot.Token ? before.BotUsername : null });
        if (string.IsNullOrEmpty(bot.Token))
            return new(bot, new SettingsProblem("token", "token is required for an enabled bot: give the bot's token from @BotFather (or save the account disabled)."));
        if (bot.Mode == TelegramMode.Webhook && string.IsNullOrEmpty(bot.SecretToken))
            return new(bot, new SettingsProblem("secretToken", "secretToken is required in webhook mode: every webhook call without it is refused (1-256 of A-Z, a-z, 0-9, _ and -)."));
        using var deadline = new CancellationTokenSource(options.Value.RequestTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            var me = await bots.For(bot.Token).GetMe(linked.Token);
            return new(bot with { BotUsername = me.Username });
        }
        catch (ApiRequestException ex)
        {
            // 401 Unauthorized (a revoked or mistyped token), 404 Not Found (no such bot): Telegram's own words.
            return new(bot, new SettingsProblem("token", $"Telegram refused the token: getMe: {ex.ErrorCode} {ex.Message}. Copy the token again from @BotFather."));
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is RequestException or HttpRequestException or OperationCanceledException)
        {
            var why = deadline.IsCancellationRequested ? $"no answer within {options.Value.RequestTimeout.TotalSeconds:0} s" : ex.InnerException?.Message ?? ex.Message;
            return new(bot, new SettingsProblem("token", $"Telegram could not be reached to check the token (getMe: {why}); try again, or save the account disabled."));
        }
    }
}
