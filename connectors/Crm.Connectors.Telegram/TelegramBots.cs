using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Telegram.Bot;
using Telegram.Bot.Requests;

namespace Crm.Connectors.Telegram;

/// <summary>
/// One <see cref="TelegramBotClient"/> per bot token, pointed at <see cref="TelegramChannelOptions.ApiBaseUrl"/>
/// through Telegram.Bot's own baseUrl option. The library's automatic 429 retry is off: the sender decides how to
/// honour retry_after (wait briefly, or hand the message back to the outbox).
/// </summary>
internal sealed class TelegramBots(IHttpClientFactory httpClients, IOptions<TelegramChannelOptions> options)
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
