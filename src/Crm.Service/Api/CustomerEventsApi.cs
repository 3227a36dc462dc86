using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.CustomerEvents;
using Crm.Service.Infrastructure.Queries;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Crm.Service.Api;

/// <summary>An external event about a customer. <see cref="EventId"/> is the sender's id of it: posting it again is safe.</summary>
public sealed record CustomerEventRequest(string? EventId, string? Type, DateTimeOffset? Time, string? Title, decimal? Amount, string? Currency, string? Link, JsonElement? Data);

/// <summary><c>POST /api/v1/customers/{id}/events</c>: orders, purchases, sign-ups from other systems, for the customer's timeline.</summary>
public static partial class CustomerEventsApi
{
    public static IEndpointRouteBuilder MapCustomerEventsApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1/customers").RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        api.MapPost("/{id:guid}/events", PostAsync);
        api.MapGet("/{id:guid}/events", ListAsync);
        return endpoints;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$")]
    private static partial Regex TypePattern();

    [GeneratedRegex("^[A-Z]{3}$")]
    private static partial Regex CurrencyPattern();

    internal static async Task<Results<Created<CustomerEventView>, Ok<CustomerEventView>, ProblemHttpResult>> PostAsync(
        Guid id, CustomerEventRequest request, ClaimsPrincipal user, CustomerQueries customers, CustomerEventStore events, TimeProvider time, CancellationToken cancellationToken)
    {
        if (request.EventId is not { Length: > 0 and <= 200 } eventId || eventId.Any(c => c is < '\u0021' or > '\u007e'))
            return Problems.Invalid("eventId", "eventId is required: your id of this event, 1-200 visible ASCII characters (a retry with the same id is stored once).");
        if (request.Type is not { } type || !TypePattern().IsMatch(type))
            return Problems.Invalid("type", "type is required: 1-64 lower-case letters, digits, '.', '_' or '-' (e.g. order.placed).");
        if (request.Time is not { } at || at.Year < 1970 || at > time.GetUtcNow().AddDays(366))
            return Problems.Invalid("time", "time is required: when it happened (ISO 8601 with offset), not more than a year ahead.");
        if (string.IsNullOrWhiteSpace(request.Title) || request.Title.Trim().Length > 200 || request.Title.Any(char.IsControl))
            return Problems.Invalid("title", "title is required: one line of at most 200 characters.");
        if (request.Amount is { } amount && (amount < -1_000_000_000_000m || amount > 1_000_000_000_000m || decimal.Round(amount, 4) != amount))
            return Problems.Invalid("amount", "amount must be between -10^12 and 10^12 with at most 4 decimals.");
        if (request.Currency is { } currency && (!CurrencyPattern().IsMatch(currency) || request.Amount is null))
            return Problems.Invalid("currency", "currency is an ISO 4217 code such as EUR, given together with amount.");
        if (request.Link is { } link && (link.Length > 2000 || !Uri.TryCreate(link, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http")))
            return Problems.Invalid("link", "link must be an absolute http(s) address of at most 2000 characters.");
        string? data = null;
        if (request.Data is { } json && json.ValueKind != JsonValueKind.Null)
        {
            if (json.ValueKind != JsonValueKind.Object)
                return Problems.Invalid("data", "data must be a JSON object.");
            data = json.GetRawText();
            if (Encoding.UTF8.GetByteCount(data) > CustomerEventStore.MaxDataBytes)
                return Problems.Invalid("data", $"data is at most {CustomerEventStore.MaxDataBytes / 1024} KB.");
        }
        if (await customers.GetAsync(id, cancellationToken) is not { } customer)
            return Problems.Of(ProblemKind.NotFound, $"No customer {id}.", "id");
        // A merged customer's events belong with the customer it was merged into.
        var owner = customer.MergedInto ?? customer.Id;
        var title = request.Title.Trim();
        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            string.Join('\n', type, at.UtcTicks, title, request.Amount?.ToString(System.Globalization.CultureInfo.InvariantCulture), request.Currency, request.Link, data))));
        var record = new CustomerEventRecord
        {
            Id = Guid.CreateVersion7(time.GetUtcNow()),
            CustomerId = owner,
            ClientEventId = eventId,
            Type = type,
            At = at,
            Title = title,
            Amount = request.Amount,
            Currency = request.Currency,
            Link = request.Link,
            Data = data,
            Fingerprint = fingerprint,
            PostedBy = user.Actor(),
            ReceivedAt = time.GetUtcNow(),
        };
        // The store re-reads the owner in the insert's transaction: a merge since the read above moves it on (FX8).
        var (outcome, stored) = await events.AddAsync(record, cancellationToken);
        return outcome switch
        {
            StoredEvent.Created => TypedResults.Created($"/api/v1/customers/{record.CustomerId}/events", stored),
            StoredEvent.Repeated => TypedResults.Ok(stored),
            _ => Problems.Invalid("eventId", $"Event '{eventId}' was already posted with other content; use a new eventId for a new event."),
        };
    }

    internal static async Task<Results<Ok<IReadOnlyList<CustomerEventView>>, ProblemHttpResult>> ListAsync(Guid id, CustomerQueries customers, CustomerEventStore events, CancellationToken cancellationToken) =>
        await customers.GetAsync(id, cancellationToken) is null
            ? Problems.Of(ProblemKind.NotFound, $"No customer {id}.", "id")
            : TypedResults.Ok(await events.LatestAsync(id, 100, cancellationToken));
}
