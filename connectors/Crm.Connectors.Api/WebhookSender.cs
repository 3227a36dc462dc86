using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Crm.Connectors.Api.Http;
using Crm.Service.Contracts;

namespace Crm.Connectors.Api;

/// <summary>
/// Posts agent replies to the channel's webhook URL, signed like inbound requests. The outbox calls it and
/// retries with backoff: 2xx is sent; 408, 429 and 5xx are retried; any other 4xx is a permanent refusal.
/// The <c>X-Crm-Delivery</c> header carries our message id, so the bridge can drop a repeated delivery.
/// </summary>
internal sealed class WebhookSender(IHttpClientFactory clients, IGrainFactory grains, TimeProvider time) : IOutboundSender
{
    public const string HttpClientName = "api-channel-webhooks";

    public ChannelKind Channel => ChannelKind.Api;

    public async Task<OutboundResult> SendAsync(OutboundDelivery delivery, CancellationToken cancellationToken = default)
    {
        var channel = await grains.GetGrain<IChannelAccountGrain>(delivery.ChannelAccountId).GetAsync();
        if (channel is null)
            return OutboundResult.Fail($"Channel '{delivery.ChannelAccountId}' no longer exists.");
        if (string.IsNullOrEmpty(channel.WebhookUrl))
            return OutboundResult.Fail($"Channel '{channel.Id}' has no webhook URL; set one to deliver replies.");

        var body = JsonSerializer.SerializeToUtf8Bytes(new
        {
            @event = "message.created",
            messageId = delivery.MessageId,
            ticketNumber = delivery.TicketNumber,
            threadKey = delivery.ThreadKey,
            recipient = delivery.Recipient,
            author = delivery.Author,
            text = delivery.Text,
            html = delivery.Html,
            createdAt = delivery.CreatedAt,
            attempt = delivery.Attempt,
        }, ApiChannelEndpoints.Json);
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, channel.WebhookUrl) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add(RequestSignature.TimestampHeader, timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(RequestSignature.SignatureHeader, RequestSignature.Compute(channel.Secret ?? "", timestamp, body));
        request.Headers.Add("X-Crm-Delivery", delivery.MessageId.ToString());

        HttpResponseMessage response;
        try
        {
            response = await clients.CreateClient(HttpClientName).SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            return OutboundResult.Retry($"Webhook unreachable: {ex.Message}");
        }
        using (response)
        {
            var status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
                return OutboundResult.Sent(await ExternalIdAsync(response, cancellationToken));
            var reason = $"Webhook answered {status} {response.ReasonPhrase}";
            return status is 408 or 429 || status >= 500 || response.StatusCode == HttpStatusCode.Conflict
                ? OutboundResult.Retry(reason)
                : OutboundResult.Fail(reason);
        }
    }

    /// <summary>A bridge may answer with {"messageId": "..."}: its own id of the message, kept on ours.</summary>
    private static async Task<string?> ExternalIdAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/json")
            return null;
        try
        {
            using var json = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("messageId", out var id) && id.ValueKind == JsonValueKind.String
                ? ApiChannelEndpoints.Truncate(id.GetString(), 255)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
