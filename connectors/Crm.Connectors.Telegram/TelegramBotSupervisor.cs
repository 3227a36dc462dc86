using System.Text;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Telegram.Bot;
using Telegram.Bot.Exceptions;

namespace Crm.Connectors.Telegram;

/// <summary>
/// One loop per enabled bot in the cluster, on the node that holds the bot's connector lease. It checks the token with getMe, then, in webhook mode, registers the webhook
/// (setWebhook with the secret token and max_connections, when a public base URL is set) and asks getWebhookInfo every
/// <see cref="TelegramChannelOptions.WebhookCheckInterval"/> whether Telegram can deliver (its last error goes to the
/// health; a webhook URL changed behind our back is registered again); in polling mode it removes any webhook
/// (Telegram refuses getUpdates while one is set) and long-polls. Every error goes to the account's health in
/// Telegram's words ("getMe: 401 Unauthorized") and the loop starts over after a backoff.
/// </summary>
internal sealed class TelegramBotSupervisor(
    IChannelAccounts accounts,
    TelegramBots bots,
    TelegramIngest ingest,
    IMailboxStateStore state,
    IChannelHealth health,
    ConnectorLeases leases,
    IOptions<TelegramChannelOptions> options,
    TimeProvider time,
    ILogger<TelegramBotSupervisor> logger) : AccountLoopSupervisor<TelegramChannelSettings>(accounts, ChannelKind.Telegram, logger)
{
    /// <summary>The cursor "folder" of a bot's getUpdates offset; the cursor's UID is the last stored update_id.</summary>
    public const string CursorFolder = "telegram:updates";

    private readonly IChannelAccounts _accounts = accounts;

    /// <summary>One reader per bot in the cluster: the loop runs only while this node holds the account's connector
    /// lease (Telegram ends the older of two getUpdates with 409, and two webhook watchers would register in turns).
    /// Another node takes over when this one stops or dies; it starts with a getUpdates without an offset, so what
    /// this node stored but Telegram had not seen confirmed comes again and is answered as a duplicate.</summary>
    protected override Task RunAccountAsync(ChannelAccount account, TelegramChannelSettings settings, CancellationToken stopping) =>
        leases.RunWhileHeldAsync(LeaseKey(account.Id), held => ReadAsync(account, settings, held), stopping);

    /// <summary>The lease of a bot's reader: named by connector and purpose, so other work for the same account (a
    /// sender, later) takes a lease of its own.</summary>
    internal static string LeaseKey(string accountId) => $"telegram:reader:{accountId}";

    private async Task ReadAsync(ChannelAccount account, TelegramChannelSettings settings, CancellationToken stopping)
    {
        var settingsOf = options.Value;
        var delay = settingsOf.FirstReconnectDelay;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                if (string.IsNullOrEmpty(settings.Token))
                {
                    await health.ReportErrorAsync(account.Id, "settings.token is not set: give the bot's token from @BotFather.", stopping);
                    await Task.Delay(Timeout.Infinite, stopping);
                }
                var bot = bots.For(settings.Token!);
                var me = await Step("getMe", () => bot.GetMe(stopping));
                if (settings.Mode == TelegramMode.Webhook)
                {
                    if (string.IsNullOrEmpty(settings.SecretToken))
                    {
                        await health.ReportErrorAsync(account.Id, "Webhook mode needs settings.secretToken: every webhook call is refused until it is set.", stopping);
                        await Task.Delay(Timeout.Infinite, stopping);
                    }
                    var url = settings.WebhookUrl(account.Id);
                    if (url is not null)
                        await Step("setWebhook", () => bot.SetWebhook(url, maxConnections: settingsOf.WebhookMaxConnections, secretToken: settings.SecretToken, cancellationToken: stopping));
                    await health.ReportSuccessAsync(account.Id, stopping);
                    logger.LogInformation("Telegram channel {Channel}: bot @{Bot} receives updates by webhook", account.Id, me.Username);
                    await ingest.PruneIfDueAsync(account, stopping);
                    await WatchWebhookAsync(account.Id, bot, url, settings.SecretToken, () => delay = settingsOf.FirstReconnectDelay, stopping);
                }
                await Step("deleteWebhook", () => bot.DeleteWebhook(dropPendingUpdates: false, cancellationToken: stopping));
                await health.ReportSuccessAsync(account.Id, stopping);
                logger.LogInformation("Telegram channel {Channel}: bot @{Bot} polls for updates", account.Id, me.Username);
                await ingest.PruneIfDueAsync(account, stopping);
                await PollAsync(account.Id, bot, () => delay = settingsOf.FirstReconnectDelay, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                var error = ex is StepException step ? step.Message : $"{ex.GetType().Name}: {ex.Message}";
                logger.LogWarning("Telegram channel {Channel}: {Error}; starting over in {Delay}", account.Id, error, delay);
                await health.ReportErrorAsync(account.Id, error, CancellationToken.None);
                try
                {
                    await Task.Delay(delay, time, stopping);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, settingsOf.MaxReconnectDelay.Ticks));
            }
        }
    }

    /// <summary>
    /// Webhook mode, until stopped: Telegram tells only getWebhookInfo that its deliveries fail (a certificate expired,
    /// a proxy that answers 401 or 404, a firewall), and drops updates it could not deliver after 24 hours. A recent
    /// last_error_date (within two check intervals) is reported as the health error, with the updates waiting.
    /// </summary>
    private async Task WatchWebhookAsync(string accountId, TelegramBotClient bot, string? url, string? secretToken, Action progressed, CancellationToken stopping)
    {
        var every = options.Value.WebhookCheckInterval;
        var recent = every * 2 > TimeSpan.FromMinutes(1) ? every * 2 : TimeSpan.FromMinutes(1);
        while (true)
        {
            await Task.Delay(every, time, stopping);
            var info = await Step("getWebhookInfo", () => bot.GetWebhookInfo(stopping));
            if (url is not null && !string.Equals(info.Url, url, StringComparison.Ordinal))
            {
                logger.LogWarning("Telegram channel {Channel}: the webhook is '{Actual}', not ours; registering it again", accountId, info.Url);
                await Step("setWebhook", () => bot.SetWebhook(url, maxConnections: options.Value.WebhookMaxConnections, secretToken: secretToken, cancellationToken: stopping));
                continue;
            }
            if (info.LastErrorMessage is { Length: > 0 } error && info.LastErrorDate is { } at
                && time.GetUtcNow() - new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)) <= recent)
            {
                await health.ReportErrorAsync(accountId, $"getWebhookInfo: Telegram cannot deliver to the webhook: {error} ({info.PendingUpdateCount} updates waiting; Telegram drops them after 24 hours).", stopping);
                continue;
            }
            await health.ReportSuccessAsync(accountId, stopping);
            progressed();
        }
    }

    /// <summary>
    /// getUpdates until stopped. Each update is handed off (or kept raw) and only then its id is stored as the cursor;
    /// Telegram considers an update confirmed once a later getUpdates asks for an offset above it, which this loop does
    /// only after the store. The first call after a start asks without an offset, that is, for Telegram's earliest
    /// unconfirmed update: after a crash between the store and the next poll those come again (the hand-off answers
    /// them as duplicates), and after Telegram restarted its update ids (it does after a week without updates) the
    /// reader follows instead of waiting above the new ids forever.
    /// </summary>
    private async Task PollAsync(string accountId, TelegramBotClient bot, Action progressed, CancellationToken stopping)
    {
        var limits = options.Value;
        var stored = await state.GetCursorAsync(accountId, CursorFolder, stopping);
        int? next = null;
        var first = true;
        while (true)
        {
            var updates = await Step("getUpdates", () => bot.SendRequest(new RawGetUpdatesRequest
            {
                Offset = first ? null : next,
                Limit = limits.PollLimit,
                Timeout = first ? 0 : (int)limits.PollTimeout.TotalSeconds,
            }, stopping));
            await health.ReportSuccessAsync(accountId, stopping);
            progressed();
            if (first && updates.Length == 0 && stored is { } cursor)
                next = (int)cursor.LastUid + 1;
            first = false;
            foreach (var update in updates)
            {
                var raw = Encoding.UTF8.GetBytes(update.GetRawText());
                // Looked up per update: the directory is in memory. A disabled or removed account is not read on: its
                // loop is stopped by the supervisor shortly, and the update stays unconfirmed until it is enabled again.
                var account = _accounts.Find(accountId);
                if (account is not { Enabled: true })
                {
                    await Task.Delay(Timeout.Infinite, stopping);
                    return;
                }
                await ingest.HandleAsync(account, raw, stopping);
                if (TelegramIngest.UpdateIdOf(raw) is { } id and >= 0)
                {
                    await state.SaveCursorAsync(accountId, CursorFolder, new MailboxCursor(0, (uint)id), stopping);
                    next = id + 1;
                }
            }
        }
    }

    private static async Task<T> Step<T>(string method, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (ApiRequestException ex)
        {
            throw new StepException($"{method}: {ex.ErrorCode} {ex.Message}", ex);
        }
    }

    private static async Task Step(string method, Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (ApiRequestException ex)
        {
            throw new StepException($"{method}: {ex.ErrorCode} {ex.Message}", ex);
        }
    }

    private sealed class StepException(string message, Exception inner) : Exception(message, inner);
}
