using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Api.Http;
using Crm.Service.Contracts;

namespace Crm.Connectors.Api;

/// <summary>
/// Posts agent replies to the channel's webhook URL, signed like inbound requests. The outbox calls it and
/// retries with backoff: 2xx is sent; 408, 429 and 5xx are retried; any other 4xx is a permanent refusal.
/// The <c>X-Crm-Delivery</c> header carries our message id, so the bridge can drop a repeated delivery.
/// </summary>
internal sealed class WebhookSender(IHttpClientFactory clients, IChannelAccounts channels, TimeProvider time) : IOutboundSender
{
    public const string HttpClientName = "api-channel-webhooks";

    public ChannelKind Channel => ChannelKind.Api;

    public async Task<OutboundResult> SendAsync(OutboundDelivery delivery, CancellationToken cancellationToken = default)
    {
        var channel = channels.Find(delivery.ChannelAccountId);
        // Missing from the directory is not final: its secret may be unreadable until the key ring is restored or
        // the secret rotated, and a reply must wait for that rather than fail for good.
        if (channel is null)
            return OutboundResult.Retry($"Channel '{delivery.ChannelAccountId}' is not available on this node (unknown, or its settings could not be read).");
        if (channel.Secret is not { Length: > 0 })
            return OutboundResult.Retry($"Channel '{channel.Id}' has no secret to sign with; rotate one.");
        if (channel.SettingsAs<ApiChannelSettings>()?.WebhookUrl is not { Length: > 0 } webhookUrl)
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
        using var request = new HttpRequestMessage(HttpMethod.Post, webhookUrl) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add(RequestSignature.TimestampHeader, timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(RequestSignature.SignatureHeader, RequestSignature.Compute(channel.Secret, timestamp, body));
        request.Headers.Add("X-Crm-Delivery", delivery.MessageId.ToString());

        return await PostAsync(clients.CreateClient(HttpClientName), request, cancellationToken);
    }

    /// <summary>Most of an answer's body read: enough for {"messageId": "..."} or an error text, never a flood.</summary>
    public const int MaxResponseBytes = 64 * 1024;

    /// <summary>
    /// Sends and judges the answer. Redirects are not followed (the handler has them off) and are a permanent
    /// failure; at most <see cref="MaxResponseBytes"/> of the body are read. Reasons are technical (status,
    /// refused address, exception): they go to logs and the admin view.
    /// </summary>
    private static async Task<OutboundResult> PostAsync(HttpClient client, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        // The client's timeout stops at the headers when the body is streamed; this one also bounds the body.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(client.Timeout);
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            var status = (int)response.StatusCode;
            var body = await ResponseBody.ReadAsync(await response.Content.ReadAsStreamAsync(deadline.Token), MaxResponseBytes, deadline.Token);
            if (response.IsSuccessStatusCode)
                return OutboundResult.Sent(ExternalId(response, body));
            var reason = $"Webhook answered {status} {response.ReasonPhrase}";
            if (status is >= 300 and < 400)
                return OutboundResult.Fail($"{reason}{(response.Headers.Location is { } location ? $" to {ResponseBody.Excerpt(location.OriginalString)}" : "")}; redirects are not followed, set the final URL as the channel's webhookUrl.");
            if (ResponseBody.Excerpt(body) is { Length: > 0 } excerpt)
                reason += $": {excerpt}";
            return status is 408 or 429 || status >= 500 || response.StatusCode == HttpStatusCode.Conflict
                ? OutboundResult.Retry(reason)
                : OutboundResult.Fail(reason);
        }
        catch (HttpRequestException ex) when (ex.InnerException is WebhookAddressRefusedException refused)
        {
            return OutboundResult.Fail($"Webhook address refused: {refused.Message}");
        }
        catch (HttpRequestException ex)
        {
            var detail = ex.InnerException is { } inner && !ex.Message.Contains(inner.Message, StringComparison.Ordinal) ? $" ({inner.GetType().Name}: {inner.Message})" : "";
            return OutboundResult.Retry($"Webhook unreachable: {ex.Message}{detail}");
        }
        catch (IOException ex)
        {
            return OutboundResult.Retry($"Webhook connection broke while reading the answer: {ex.Message}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return OutboundResult.Retry($"Webhook gave no complete answer within {client.Timeout.TotalSeconds:0.#} s.");
        }
    }

    /// <summary>A bridge may answer with {"messageId": "..."}: its own id of the message, kept on ours.</summary>
    private static string? ExternalId(HttpResponseMessage response, byte[] body)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/json")
            return null;
        try
        {
            using var json = JsonDocument.Parse(body);
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
