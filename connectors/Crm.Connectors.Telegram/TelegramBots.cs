using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Telegram.Bot;
using Telegram.Bot.Exceptions;
using Telegram.Bot.Requests;

namespace Crm.Connectors.Telegram;

/// <summary>
/// One <see cref="TelegramBotClient"/> per bot token, pointed at <see cref="TelegramChannelOptions.ApiBaseUrl"/>
/// through Telegram.Bot's own baseUrl option. The library's automatic 429 retry is off: the sender decides how to
/// honour retry_after (wait briefly, or hand the message back to the outbox).
/// </summary>
/// <remarks>The token is part of every request's path (/bot{token}/method, /file/bot{token}/path), so the HTTP client's
/// own request logging is removed at registration (see <see cref="TelegramChannelExtensions"/>): .NET redacts only the
/// query string there, and a token in the logs gives full control of the bot.</remarks>
internal sealed class TelegramBots(IHttpClientFactory httpClients, IOptions<TelegramChannelOptions> options, TimeProvider time)
{
    public const string HttpClientName = "telegram";

    private readonly ConcurrentDictionary<string, TelegramBotClient> _clients = new(StringComparer.Ordinal);

    public TelegramBotClient For(string token) => _clients.GetOrAdd(token, static (token, state) =>
    {
        var (factory, settings) = state;
        var clientOptions = new TelegramBotClientOptions(token, settings.ApiBaseUrl) { RetryCount = 0, RetryThreshold = 0 };
        var client = new TelegramBotClient(clientOptions, factory.CreateClient(HttpClientName))
        {
            // The long poll holds a request open for PollTimeout; every other call is bounded by RequestTimeout.
            Timeout = settings.PollTimeout + settings.RequestTimeout,
        };
        return client;
    }, (httpClients, options.Value));

    /// <summary>
    /// Downloads a file that getFile named, with its own deadline (<paramref name="timeout"/>, which grows with the
    /// file's size) covering the body too, so a download that stalls half-way cannot hold the reader. A refusal becomes
    /// an <see cref="ApiRequestException"/> with the HTTP status; a deadline passed, a <see cref="TimeoutException"/>.
    /// </summary>
    public async Task DownloadAsync(string token, string filePath, Stream destination, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var url = $"{new TelegramBotClientOptions(token, options.Value.ApiBaseUrl).BaseFileUrl}/{filePath.TrimStart('/')}";
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            using var response = await httpClients.CreateClient(HttpClientName).GetAsync(url, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            if (!response.IsSuccessStatusCode)
                throw new ApiRequestException($"File download: {(int)response.StatusCode} {response.ReasonPhrase}", (int)response.StatusCode);
            await using var body = await response.Content.ReadAsStreamAsync(linked.Token);
            await body.CopyToAsync(destination, 81920, linked.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The file download did not finish within {timeout.TotalSeconds:0} s.");
        }
    }
}

/// <summary>
/// getUpdates answered as raw JSON objects rather than <c>Update</c>s: one update the library cannot bind (a kind
/// newer than the library, a malformed object) must be kept raw with a reason, not fail the whole batch and stop the
/// reader. Sent through <see cref="ITelegramBotClient.SendRequest{TResponse}"/>, the library's extension point.
/// </summary>
internal sealed class RawGetUpdatesRequest() : RequestBase<JsonElement[]>("getUpdates")
{
    [JsonPropertyName("offset")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Offset { get; init; }

    [JsonPropertyName("limit")]
    public int Limit { get; init; } = 100;

    [JsonPropertyName("timeout")]
    public int Timeout { get; init; }
}
