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
/// X-Telegram-Bot-Api-Secret-Token (constant time; 401), size (413); then the update is handed off or kept raw and
/// only then answered 200. Telegram retries anything else, so a transient failure answers 500 and the update comes
/// again (a duplicate then). A malformed update from a caller who knows the secret is kept raw and answered 200:
/// refusing it would make Telegram resend it forever.
/// </summary>
public static class TelegramWebhookEndpoints
{
    public const string SecretHeader = "X-Telegram-Bot-Api-Secret-Token";

    public static IEndpointRouteBuilder MapTelegramChannel(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/connectors/telegram/{account}/webhook", ReceiveAsync).DisableAntiforgery().WithName("TelegramWebhook");
        return endpoints;
    }

    internal static async Task<Results<Ok, ProblemHttpResult>> ReceiveAsync(
        string account, HttpContext http, IChannelAccounts accounts, TelegramIngest ingest, IChannelHealth health,
        IOptions<TelegramChannelOptions> options, ILoggerFactory logs, CancellationToken cancellationToken)
    {
        var channel = accounts.Find(account);
        if (channel is null || channel.Kind != ChannelKind.Telegram || channel.SettingsAs<TelegramChannelSettings>() is not { } settings)
            return Problems.Of(ProblemKind.NotFound, $"There is no Telegram channel '{Truncate(account, 64)}'.", "account");
        if (!channel.Enabled)
            return Problems.Of(ProblemKind.Forbidden, $"Channel '{channel.Id}' is disabled; an admin can enable it.", "account");
        if (settings.Mode != TelegramMode.Webhook)
            return Problems.Of(ProblemKind.Conflict, $"Channel '{channel.Id}' reads its updates by long polling; its webhook is off.", "account");
        if (string.IsNullOrEmpty(settings.SecretToken))
            return Problems.Of(ProblemKind.Unauthorized, $"Channel '{channel.Id}' has no secret token; an admin must set settings.secretToken (and the bot's webhook with it).", SecretHeader);
        if (!SecretMatches(settings.SecretToken, http.Request.Headers[SecretHeader]))
            return Problems.Of(ProblemKind.Unauthorized, $"{SecretHeader} is missing or does not match this bot's secret token.", SecretHeader);

        var limit = options.Value.MaxWebhookBodyBytes;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeLimit)
            sizeLimit.MaxRequestBodySize = limit;
        var body = await ReadAsync(http.Request, limit, cancellationToken);
        if (body is null)
            return Problems.Of(ProblemKind.TooLarge, $"The body exceeds {limit} bytes.", "body");

        var outcome = await ingest.ProcessAsync(channel, body, cancellationToken);
        await health.ReportSuccessAsync(channel.Id, cancellationToken);
        if (outcome is UpdateOutcome.Kept kept)
            logs.CreateLogger(typeof(TelegramWebhookEndpoints)).LogDebug("Telegram channel {Channel}: update kept raw: {Reason}", channel.Id, kept.Reason);
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
