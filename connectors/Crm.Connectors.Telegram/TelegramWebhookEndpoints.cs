using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using System.Security.Cryptography;
using System.Text;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Telegram;

/// <summary>
/// POST /connectors/telegram/{account}/webhook: Telegram's webhook calls. Checked in the order account (in memory),
/// X-Telegram-Bot-Api-Secret-Token (constant time), size (413). Every refusal before the secret matched (no such
/// account, disabled, polling, no secret set, a wrong secret) is the same 401, so a stranger learns nothing about which
/// accounts exist or their state; the real reason is logged (and, for a missing secret, in the health); then the update is handed off or kept raw and
/// only then answered 200. Telegram retries anything else, so a transient failure answers 500 and the update comes
/// again (a duplicate then). A malformed update from a caller who knows the secret is kept raw and answered 200:
/// refusing it would make Telegram resend it forever.
/// </summary>
public static class TelegramWebhookEndpoints
{
    public const string SecretHeader = "X-Telegram-Bot-Api-Secret-Token";
    public const string RateLimitPolicy = "telegram-webhook";

    /// <summary>
    /// The webhook's rate limit, per bot: calls with the bot's secret token share one bucket
    /// (<see cref="TelegramChannelOptions.WebhookRequestsPerSecond"/>), and every other call for that bot path a small
    /// bucket of its own, so a stranger who floods a bot's URL cannot use up the budget of Telegram's real deliveries.
    /// </summary>
    internal static RateLimitPartition<string> Partition(HttpContext http)
    {
        var account = http.Request.RouteValues["account"]?.ToString() ?? "";
        var options = http.RequestServices.GetRequiredService<IOptions<TelegramChannelOptions>>().Value;
        var settings = http.RequestServices.GetRequiredService<IChannelAccounts>().Find(account) is { Kind: ChannelKind.Telegram } channel
            ? channel.SettingsAs<TelegramChannelSettings>() : null;
        var genuine = settings?.SecretToken is { Length: > 0 } secret && SecretMatches(secret, http.Request.Headers[SecretHeader]);
        var (key, perSecond, burst) = genuine
            ? (account, options.WebhookRequestsPerSecond, options.WebhookBurst)
            // A path that names no Telegram account shares one bucket: a partition (and its replenishing timer) per
            // invented path would let a stranger create thousands of them.
            : (settings is null ? "refused:unknown" : "refused:" + account, 5, 20);
        return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = perSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    public static IEndpointRouteBuilder MapTelegramChannel(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/connectors/telegram/{account}/webhook", ReceiveAsync).DisableAntiforgery().WithName("TelegramWebhook")
            .RequireRateLimiting(RateLimitPolicy);
        return endpoints;
    }

    internal static async Task<Results<Ok, ProblemHttpResult>> ReceiveAsync(
        string account, HttpContext http, IChannelAccounts accounts, TelegramIngest ingest, IChannelHealth health,
        IOptions<TelegramChannelOptions> options, ILoggerFactory logs, CancellationToken cancellationToken)
    {
        var channel = accounts.Find(account);
        var settings = channel is { Kind: ChannelKind.Telegram } ? channel.SettingsAs<TelegramChannelSettings>() : null;
        var refusal = channel is null || settings is null ? "there is no such Telegram channel"
            : !channel.Enabled ? "the channel is disabled"
            : settings.Mode != TelegramMode.Webhook ? "the channel reads its updates by long polling"
            : string.IsNullOrEmpty(settings.SecretToken) ? "the channel has no settings.secretToken"
            : !SecretMatches(settings.SecretToken, http.Request.Headers[SecretHeader]) ? "the secret token does not match"
            : null;
        if (refusal is not null)
        {
            logs.CreateLogger(typeof(TelegramWebhookEndpoints)).LogDebug("Telegram webhook call for '{Account}' refused: {Reason}", Truncate(account, 64), refusal);
            return Problems.Of(ProblemKind.Unauthorized, $"{SecretHeader} is missing or does not match this bot's secret token.", SecretHeader);
        }
        var bot = channel!;

        var limit = options.Value.MaxWebhookBodyBytes;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeLimit)
            sizeLimit.MaxRequestBodySize = limit;
        var body = await ReadAsync(http.Request, limit, cancellationToken);
        if (body is null)
            return Problems.Of(ProblemKind.TooLarge, $"The body exceeds {limit} bytes.", "body");

        var outcome = await ingest.HandleAsync(bot, body, cancellationToken);
        await health.ReportSuccessAsync(bot.Id, cancellationToken);
        if (outcome is UpdateOutcome.Kept kept)
            logs.CreateLogger(typeof(TelegramWebhookEndpoints)).LogDebug("Telegram channel {Channel}: update kept raw: {Reason}", bot.Id, kept.Reason);
        return TypedResults.Ok();
    }

    /// <summary>Compares hashes of both, so neither the content nor the length of the secret leaks through timing.</summary>
    internal static bool SecretMatches(string expected, string? given) =>
        given is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(expected)), SHA256.HashData(Encoding.UTF8.GetBytes(given)));

    /// <summary>The body, or null past <paramref name="limit"/>; the buffer grows as bytes arrive, whatever Content-Length claims.</summary>
    private static async Task<byte[]?> ReadAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
            return null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await request.Body.ReadAsync(chunk, cancellationToken);
                if (read == 0)
                    return buffer.ToArray();
                if (buffer.Length + read > limit)
                    return null;
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null;
        }
    }

    private static string Truncate(string value, int max) => value.Length <= max ? value : value[..max];
}
