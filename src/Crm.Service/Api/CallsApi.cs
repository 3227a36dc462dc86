using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.CustomerEvents;
using Crm.Service.Infrastructure.Queries;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Crm.Service.Api;

/// <summary>A phone call to log: <c>direction</c> "in" or "out", the <c>phone</c> number, <c>time</c> (default now),
/// <c>durationSeconds</c>, <c>summary</c> and <c>result</c>.</summary>
public sealed record CallRequest(string? Direction, string? Phone, DateTimeOffset? Time, int? DurationSeconds, string? Summary, string? Result);

/// <summary>Where the call's number stands: <see cref="HeldByAnother"/> when it already belonged to another customer,
/// who keeps it (<see cref="CustomerId"/>): a logged call never moves a number silently.</summary>
public sealed record PhoneIdentityLink(string Identity, Guid CustomerId, bool HeldByAnother);

/// <summary>A logged call: on a ticket as a timeline entry of the phone channel, on a customer as an event of the
/// customer's timeline (<c>call.in</c> / <c>call.out</c>).</summary>
public sealed record CallLogged(long? Ticket, Guid Customer, TimelineEntry? Entry, CustomerEventView? Event, PhoneIdentityLink Phone);

/// <summary>
/// Log a call (issue 17). The call is stored first (a message without a conversation on a ticket, so no outbox row and
/// nothing is sent; or a customer event), then its number is linked to the customer's phone identity through
/// <see cref="IIdentityGrain.LinkIfFreeAsync"/>: a free number becomes the customer's, a number held by another customer
/// stays there and the answer says so. A retry with the same key returns the first call and links again (harmless).
/// </summary>
public sealed class CallLog(IGrainFactory grains, TicketQueries tickets, CustomerQueries customers, CustomerEventStore events, TimeProvider time)
{
    /// <summary>Checks and normalizes a request; throws <see cref="DomainException"/> naming the field at fault.</summary>
    public PhoneCall Parse(CallRequest request)
    {
        var direction = request.Direction?.Trim().ToLowerInvariant() switch
        {
            "in" or "inbound" => MessageDirection.Inbound,
            "out" or "outbound" => MessageDirection.Outbound,
            _ => throw new DomainException(DomainErrorKind.Invalid, "direction is required: \"in\" (the customer called) or \"out\".", "direction"),
        };
        string phone;
        try
        {
            phone = IdentityNormalizer.Phone(request.Phone ?? "");
        }
        catch (FormatException)
        {
            throw new DomainException(DomainErrorKind.Invalid, "phone is required: a phone number of 3-20 digits, international with '+'.", "phone");
        }
        var call = new PhoneCall
        {
            Direction = direction,
            Phone = phone,
            At = request.Time ?? time.GetUtcNow(),
            DurationSeconds = request.DurationSeconds ?? 0,
            Summary = string.IsNullOrWhiteSpace(request.Summary) ? null : request.Summary.Trim(),
            Result = string.IsNullOrWhiteSpace(request.Result) ? null : request.Result.Trim(),
        };
        PhoneCalls.Check(call, time.GetUtcNow());
        return call;
    }

    public async Task<CallLogged> OnTicketAsync(long number, PhoneCall call, string actor, string? requestId, CancellationToken cancellationToken)
    {
        var message = await grains.GetGrain<ITicketGrain>(number).LogCallAsync(call, actor, requestId, cancellationToken);
        var ticket = await tickets.GetAsync(number, cancellationToken)
            ?? throw new DomainException(DomainErrorKind.NotFound, $"No ticket #{number}.", "number");
        var phone = await LinkAsync(ticket.CustomerId, call.Phone, actor, cancellationToken);
        return new CallLogged(number, ticket.CustomerId, AgentApi.ToEntry(message), null, phone);
    }

    public async Task<CallLogged> OnCustomerAsync(Guid id, PhoneCall call, string actor, string? requestId, CancellationToken cancellationToken)
    {
        if (await customers.GetAsync(id, cancellationToken) is not { } customer)
            throw new DomainException(DomainErrorKind.NotFound, $"No customer {id}.", "id");
        // A merged customer's calls belong with the customer it was merged into (as its events do).
        var owner = customer.MergedInto ?? customer.Id;
        var now = time.GetUtcNow();
        var data = JsonSerializer.Serialize(new
        {
            direction = call.Direction == MessageDirection.Inbound ? "in" : "out",
            phone = call.Phone,
            durationSeconds = call.DurationSeconds,
            result = call.Result,
            summary = call.Summary,
        });
        var (outcome, stored) = await events.AddAsync(new CustomerEventRecord
        {
            Id = Guid.CreateVersion7(now),
            CustomerId = owner,
            ClientEventId = "call:" + (requestId ?? Guid.CreateVersion7(now).ToString("N")),
            Type = call.Direction == MessageDirection.Inbound ? "call.in" : "call.out",
            At = call.At,
            Title = PhoneCalls.Title(call),
            Data = data,
            Fingerprint = PhoneCalls.Fingerprint("customer:" + owner, call),
            PostedBy = actor,
            ReceivedAt = now,
        }, cancellationToken);
        if (outcome == StoredEvent.Conflict)
            throw new DomainException(DomainErrorKind.Invalid, "This Idempotency-Key was already used for a different call; use a new key for a new call.", "Idempotency-Key");
        var phone = await LinkAsync(owner, call.Phone, actor, cancellationToken);
        return new CallLogged(null, owner, null, stored, phone);
    }

    private async Task<PhoneIdentityLink> LinkAsync(Guid customerId, string phone, string actor, CancellationToken cancellationToken)
    {
        // The same key as every other phone identity (IdentityNormalizer), so a call and a Telegram contact meet.
        var key = GrainKeys.Identity(IdentityKind.Phone, phone, "");
        var holder = await grains.GetGrain<IIdentityGrain>(key).LinkIfFreeAsync(customerId, actor, cancellationToken);
        if (holder == customerId)
            await grains.GetGrain<ICustomerGrain>(customerId).IdentityChangedAsync();
        return new PhoneIdentityLink(key, holder, holder != customerId);
    }

    /// <summary>The summary of a call event (its data's "summary"), for the customer page.</summary>
    public static string? SummaryOf(CustomerEventView e)
    {
        if (!e.Type.StartsWith("call.", StringComparison.Ordinal) || e.Data is null)
            return null;
        try
        {
            using var json = JsonDocument.Parse(e.Data);
            return json.RootElement.TryGetProperty("summary", out var summary) && summary.ValueKind == JsonValueKind.String ? summary.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The console form's duration: "m:ss", or whole minutes.</summary>
    public static bool TryParseDuration(string? text, out int seconds)
    {
        seconds = 0;
        var value = text?.Trim();
        if (string.IsNullOrEmpty(value))
            return true;
        var colon = value.IndexOf(':');
        if (colon < 0)
            return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var minutes) && minutes <= PhoneCalls.MaxDurationSeconds / 60
                && (seconds = minutes * 60) >= 0;
        if (int.TryParse(value[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out var m)
            && int.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s < 60 && m <= PhoneCalls.MaxDurationSeconds / 60)
        {
            seconds = m * 60 + s;
            return true;
        }
        return false;
    }

    /// <summary>The console form's time (a datetime-local value, read as UTC); empty is now.</summary>
    public static bool TryParseTime(string? text, out DateTimeOffset? at)
    {
        at = null;
        if (string.IsNullOrWhiteSpace(text))
            return true;
        if (DateTime.TryParse(text.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var parsed))
        {
            at = new DateTimeOffset(DateTime.SpecifyKind(parsed, DateTimeKind.Utc));
            return true;
        }
        return false;
    }
}

/// <summary><c>POST /api/v1/tickets/{number}/calls</c> and <c>POST /api/v1/customers/{id}/calls</c> (role Agent).
/// Validation answers 422 naming the field; an <c>Idempotency-Key</c> makes a retry return the first call.</summary>
public static class CallsApi
{
    public static IEndpointRouteBuilder MapCallsApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1").RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        api.MapPost("/tickets/{number:long}/calls", OnTicketAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapPost("/customers/{id:guid}/calls", OnCustomerAsync);
        return endpoints;
    }

    internal static async Task<Results<Created<CallLogged>, ProblemHttpResult>> OnTicketAsync(
        long number, CallRequest request, HttpContext http, ClaimsPrincipal user, CallLog calls, CancellationToken cancellationToken)
    {
        if (!AgentApi.TryReadIdempotencyKey(http, user, out var requestId))
            return Problems.Invalid("Idempotency-Key", $"Idempotency-Key must be one value of 1-{AgentApi.MaxIdempotencyKeyLength} visible ASCII characters.");
        var logged = await calls.OnTicketAsync(number, calls.Parse(request), user.Actor(), requestId is null ? null : "call:" + requestId, cancellationToken);
        return TypedResults.Created($"/api/v1/tickets/{number}/timeline", logged);
    }

    internal static async Task<Results<Created<CallLogged>, ProblemHttpResult>> OnCustomerAsync(
        Guid id, CallRequest request, HttpContext http, ClaimsPrincipal user, CallLog calls, CancellationToken cancellationToken)
    {
        if (!AgentApi.TryReadIdempotencyKey(http, user, out var requestId))
            return Problems.Invalid("Idempotency-Key", $"Idempotency-Key must be one value of 1-{AgentApi.MaxIdempotencyKeyLength} visible ASCII characters.");
        var logged = await calls.OnCustomerAsync(id, calls.Parse(request), user.Actor(), requestId, cancellationToken);
        return TypedResults.Created($"/api/v1/customers/{logged.Customer}/events", logged);
    }
}
