using System.Globalization;
using System.Text.Json;
using System.Text.Unicode;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Api.Http;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Api;

/// <summary>
/// The inbound side of the messaging API channel. A request is answered 202 only after the message is
/// durably stored; anything wrong with it gets a 4xx problem naming the field, and nothing is half stored.
/// </summary>
public static class ApiChannelEndpoints
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { MaxDepth = 16 };

    public static IEndpointRouteBuilder MapApiChannel(this IEndpointRouteBuilder endpoints)
    {
        // No endpoint rate limit policy: the channel's bucket is charged in the handler, once the signature verified,
        // so a caller who does not know the secret cannot spend a channel's budget.
        var group = endpoints.MapGroup("/api/v1/channels/{channelId}").DisableAntiforgery();
        group.MapPost("/messages", ReceiveAsync).WithName("ApiChannelReceive");
        group.MapPost("/receipts", ReceiptAsync).WithName("ApiChannelReceipt");
        return endpoints;
    }

    internal static async Task<Results<Accepted<IngestResponse>, ProblemHttpResult>> ReceiveAsync(
        string channelId, HttpContext http, IInboundHandOff handOff, IChannelAccounts channels, ApiChannelRateLimiter limiter, IOptions<ApiChannelOptions> options,
        TimeProvider time, ILoggerFactory logs, CancellationToken cancellationToken)
    {
        var (request, body, problem) = await ReadSignedAsync<InboundMessageRequest>(channelId, http, channels, limiter, options.Value, time, cancellationToken);
        if (problem is not null)
            return problem;
        var (message, invalid) = InboundMessageMapper.Map(channelId, request!, body!, time.GetUtcNow());
        if (invalid is not null)
            return invalid;
        try
        {
            var result = await handOff.HandOffAsync(message!, cancellationToken);
            return TypedResults.Accepted((string?)null, new IngestResponse(result.MessageId, result.ConversationId, result.TicketNumber, result.CustomerId, result.Duplicate));
        }
        catch (DomainException ex)
        {
            logs.CreateLogger(typeof(ApiChannelEndpoints)).LogInformation("Channel {Channel} message refused: {Reason}", channelId, ex.Message);
            return Problems.From(ex);
        }
    }

    internal static async Task<Results<Accepted, ProblemHttpResult>> ReceiptAsync(
        string channelId, HttpContext http, IGrainFactory grains, IChannelAccounts channels, ApiChannelRateLimiter limiter, IOptions<ApiChannelOptions> options,
        TimeProvider time, CancellationToken cancellationToken)
    {
        var (receipt, _, problem) = await ReadSignedAsync<DeliveryReceiptRequest>(channelId, http, channels, limiter, options.Value, time, cancellationToken);
        if (problem is not null)
            return problem;
        if (receipt!.MessageId is not { } messageId)
            return Problems.Invalid("messageId", "messageId is required: the id of our message, as sent in the webhook.");
        DeliveryStatus? status = receipt.Status?.ToLowerInvariant() switch
        {
            "sent" => DeliveryStatus.Sent,
            "delivered" => DeliveryStatus.Delivered,
            "failed" => DeliveryStatus.Failed,
            _ => null,
        };
        if (status is null)
            return Problems.Invalid("status", "status must be one of: sent, delivered, failed.");
        try
        {
            await grains.GetGrain<IMessageDeliveryGrain>(messageId).UpdateAsync(
                new DeliveryUpdate(status.Value, Truncate(receipt.Reason, 1000), Truncate(receipt.ExternalId, 255), channelId), cancellationToken);
            return TypedResults.Accepted((string?)null);
        }
        catch (DomainException ex)
        {
            return Problems.From(ex);
        }
    }

    /// <summary>Channel (in memory), size, signature, the channel's rate limit, UTF-8 and JSON checks, in that order:
    /// nothing unsigned is parsed or charged to the channel.</summary>
    internal static async Task<(T? Request, byte[]? Body, ProblemHttpResult? Problem)> ReadSignedAsync<T>(
        string channelId, HttpContext http, IChannelAccounts channels, ApiChannelRateLimiter limiter, ApiChannelOptions options, TimeProvider time, CancellationToken cancellationToken)
        where T : class
    {
        var channel = channels.Find(channelId);
        if (channel is null || channel.Kind != ChannelKind.Api)
            return (null, null, Problems.Of(ProblemKind.NotFound, $"There is no API channel '{Truncate(channelId, 64)}'.", "channelId"));
        if (!channel.Enabled)
            return (null, null, Problems.Of(ProblemKind.Forbidden, $"Channel '{channelId}' is disabled; an admin can enable it.", "channelId"));

        if (channel.Secret is not { Length: > 0 })
            return (null, null, Problems.Of(ProblemKind.Unauthorized, $"Channel '{channel.Id}' has no secret; an admin can rotate one.", "channelId"));
        // Missing, malformed or stale signature headers are refused before a byte of the body is read.
        var headers = RequestSignature.CheckHeaders(http.Request.Headers[RequestSignature.TimestampHeader], http.Request.Headers[RequestSignature.SignatureHeader],
            time.GetUtcNow(), options.TimestampTolerance);
        if (headers != RequestSignature.Outcome.Valid)
            return (null, null, SignatureProblem(headers, options));

        // Kestrel stops reading past this endpoint's limit, whatever the server-wide limit is.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeLimit)
            sizeLimit.MaxRequestBodySize = options.MaxBodyBytes;
        var body = await RequestBodyReader.ReadAsync(http.Request.Body, http.Request.ContentLength, options.MaxBodyBytes, cancellationToken);
        if (body is null)
            return (null, null, Problems.Of(ProblemKind.TooLarge, $"The body exceeds {options.MaxBodyBytes} bytes.", "body"));

        var verdict = RequestSignature.Verify(channel.Secret, http.Request.Headers[RequestSignature.TimestampHeader], http.Request.Headers[RequestSignature.SignatureHeader],
            body, time.GetUtcNow(), options.TimestampTolerance);
        if (verdict != RequestSignature.Outcome.Valid)
            return (null, null, SignatureProblem(verdict, options));

        if (limiter.TryAcquire(channel.Id) is { } retryAfter)
        {
            http.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
            return (null, null, Problems.Of(ProblemKind.RateLimited, $"Channel '{channel.Id}' is over its request rate; retry after {retryAfter} s."));
        }

        var json = body.AsSpan();
        if (json.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
            json = json[3..];
        if (!Utf8.IsValid(json))
            return (null, null, Problems.Of(ProblemKind.MalformedBody, "The body is not valid UTF-8.", "body"));
        try
        {
            var request = JsonSerializer.Deserialize<T>(json, Json);
            if (request is null)
                return (null, null, Problems.Of(ProblemKind.MalformedBody, "The body must be a JSON object.", "body"));
            return (request, body, null);
        }
        catch (JsonException ex)
        {
            var field = Problems.FieldOf(ex.Path);
            return (null, null, Problems.Of(ProblemKind.MalformedBody, field is null ? $"The body is not valid JSON: {FirstSentence(ex.Message)}" : $"'{field}' has the wrong type or is not valid JSON.", field ?? "body"));
        }
    }

    private static string FirstSentence(string message) => message.Split(". ")[0];

    private static ProblemHttpResult SignatureProblem(RequestSignature.Outcome outcome, ApiChannelOptions options) => outcome switch
    {
        RequestSignature.Outcome.Missing => Problems.Of(ProblemKind.Unauthorized, $"Send {RequestSignature.TimestampHeader} (Unix seconds) and {RequestSignature.SignatureHeader} (sha256=hex HMAC of \"timestamp.body\" with the channel secret).", RequestSignature.SignatureHeader),
        RequestSignature.Outcome.Malformed => Problems.Of(ProblemKind.Unauthorized, $"{RequestSignature.TimestampHeader} must be Unix seconds.", RequestSignature.TimestampHeader),
        RequestSignature.Outcome.Stale => Problems.Of(ProblemKind.Unauthorized, $"{RequestSignature.TimestampHeader} is more than {options.TimestampTolerance.TotalSeconds:0} s from our clock; sign requests when you send them.", RequestSignature.TimestampHeader),
        _ => Problems.Of(ProblemKind.Unauthorized, "The signature does not match the body and timestamp for this channel's secret.", RequestSignature.SignatureHeader),
    };

    internal static string? Truncate(string? value, int max) => value is null ? null : value.Length <= max ? value : value[..max];
}

/// <summary>The 202 answer: where the message went.</summary>
public sealed record IngestResponse(Guid MessageId, Guid ConversationId, long TicketNumber, Guid CustomerId, bool Duplicate);
