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
/// <c>durationSeconds</c>, <c>summary</c>, <c>result</c> and <c>connected</c> (whether it reached the other person;
/// absent: read from the duration and the result, review CX1).</summary>
public sealed record CallRequest(string? Direction, string? Phone, DateTimeOffset? Time, int? DurationSeconds, string? Summary, string? Result,
    bool? Connected = null);

/// <summary>Where the call's number stands: <see cref="HeldByAnother"/> when it already belonged to another customer,
/// who keeps it (<see cref="CustomerId"/>): a logged call never moves a number silently.</summary>
public sealed record PhoneIdentityLink(string Identity, Guid CustomerId, bool HeldByAnother);

/// <summary>A logged call: on a ticket as a timeline entry of the phone channel, on a customer as an event of the
/// customer's timeline (<c>call.in</c> / <c>call.out</c>). <see cref="Phone"/> is null when the number was not linked:
/// not international (no leading '+', review FX6), shorter than <see cref="CallLog.MinLinkedDigits"/> digits (an
/// extension, a short code), or the link failed after the call was stored (review CS5; the call is not repeated).</summary>
public sealed record CallLogged(long? Ticket, Guid Customer, TimelineEntry? Entry, CustomerEventView? Event, PhoneIdentityLink? Phone);

/// <summary>
/// Log a call (issue 17). The call is stored first (a message without a conversation on a ticket, so no outbox row and
/// nothing is sent; or a customer event), then its number is linked to the customer's phone identity through
/// <see cref="IIdentityGrain.LinkIfFreeAsync"/>: a free number becomes the customer's, a number held by another customer
/// stays there and the answer says so. A retry with the same key returns the first call and links again (harmless).
/// </summary>
public sealed partial class CallLog(IGrainFactory grains, TicketQueries tickets, CustomerQueries customers, CustomerEventStore events, TimeProvider time,
    ILogger<CallLog> logger)
{
    /// <summary>The longest phone text accepted, as the console form's field (review CS4).</summary>
    public const int MaxPhoneLength = 40;

    /// <summary>Fewer digits are an extension or a short code: the call is logged, the number is not made anyone's
    /// identity (review CS4).</summary>
    public const int MinLinkedDigits = 6;

    /// <summary>Only an international number ('+' and the country code, as E.164 writes it) becomes an identity (review
    /// FX6): a national number ("030 1234567") would never meet the same number from Telegram (a contact the user shared
    /// of themselves, <c>TelegramIngest.LinkPhoneAsync</c>, which is always international; review CX6 checked), and
    /// digits without '+' are as often a date ("2025-03-04"), an order or a customer number. Such a call is logged with
    /// its number as typed and links nobody.</summary>
    public static bool IsLinkable(string phone) => phone.StartsWith('+') && phone.Count(char.IsAsciiDigit) >= MinLinkedDigits;

    /// <summary>A leading '+', then digits with the separators people write: spaces, '-', '(', ')' and '.'.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^\+?[0-9 ().-]+$")]
    private static partial System.Text.RegularExpressions.Regex PhonePattern();

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
            // Only what a phone number is written with: "ext 123" or "order 4711" is not a number to link (review CS4).
            var raw = request.Phone?.Trim() ?? "";
            if (raw.Length > MaxPhoneLength || !PhonePattern().IsMatch(raw))
                throw new FormatException();
            phone = IdentityNormalizer.Phone(raw);
        }
        catch (FormatException)
        {
            throw new DomainException(DomainErrorKind.Invalid, $"phone is required: a phone number of 3-20 digits, international with '+', written with digits, spaces, '-', '(', ')' or '.' only, at most {MaxPhoneLength} characters.", "phone");
        }
        var call = new PhoneCall
        {
            Direction = direction,
            Phone = phone,
            At = request.Time ?? time.GetUtcNow(),
            DurationSeconds = request.DurationSeconds ?? 0,
            Summary = string.IsNullOrWhiteSpace(request.Summary) ? null : request.Summary.Trim(),
            Result = string.IsNullOrWhiteSpace(request.Result) ? null : request.Result.Trim(),
            Connected = request.Connected,
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
        if (await customers.GetAsync(id, cancellationToken) is null)
            throw new DomainException(DomainErrorKind.NotFound, $"No customer {id}.", "id");
        // A merged customer's calls belong with the customer it was merged into (as its events do), however deep.
        var owner = await OwnerAsync(id, cancellationToken);
        var now = time.GetUtcNow();
        var data = JsonSerializer.Serialize(new
        {
            direction = call.Direction == MessageDirection.Inbound ? "in" : "out",
            phone = call.Phone,
            durationSeconds = call.DurationSeconds,
            result = call.Result,
            summary = call.Summary,
            connected = call.Connected,
        });
        var record = new CustomerEventRecord
        {
            Id = Guid.CreateVersion7(now),
            CustomerId = owner,
            ClientEventId = "call:" + (requestId ?? Guid.CreateVersion7(now).ToString("N")),
            Type = call.Direction == MessageDirection.Inbound ? "call.in" : "call.out",
            At = call.At,
            Title = PhoneCalls.Title(call),
            Data = data,
            // Not the customer: a merge moves the event to another one, and a retry must still match (review CS3).
            Fingerprint = PhoneCalls.Fingerprint("customer", call),
            PostedBy = actor,
            ReceivedAt = now,
        };
        // The store re-reads the owner in the insert's transaction (FX8): a merge that committed since the read above
        // moves the call on to the customer it went into, so it is never left on a merged source.
        CustomerEventView stored;
        if (requestId is null)
        {
            stored = (await events.AddAsync(record, cancellationToken)).Event;
            owner = record.CustomerId;
        }
        else
        {
            // The key is one across customers and merges (review CS3): a retry finds its call wherever a merge moved
            // it; the key used on another customer, or with another call, is refused.
            var (held, created) = await events.AddOnceAsync(record, cancellationToken);
            owner = record.CustomerId;
            if (held is null || (!created && (held.Fingerprint != record.Fingerprint || await OwnerAsync(held.CustomerId, cancellationToken) != owner)))
                throw new DomainException(DomainErrorKind.Invalid, "This Idempotency-Key was already used for a different call; use a new key for a new call.", "Idempotency-Key");
            stored = CustomerEventStore.ToView(held);
        }
        var phone = await LinkAsync(owner, call.Phone, actor, cancellationToken);
        return new CallLogged(null, owner, null, stored, phone);
    }

    /// <summary>The customer a merged customer's content now belongs to, following merges of merges.</summary>
    private async Task<Guid> OwnerAsync(Guid id, CancellationToken cancellationToken)
    {
        for (var hops = 0; hops < 16 && await customers.GetAsync(id, cancellationToken) is { MergedInto: { } next }; hops++)
            id = next;
        return id;
    }

    /// <summary>Links the number after the call's commit. A failure here (a duplicate activation, a timeout) leaves the
    /// call stored and answered 201 with no phone, so a client does not retry and log it twice (review CS5); the next
    /// call with the number links it.</summary>
    private async Task<PhoneIdentityLink?> LinkAsync(Guid customerId, string phone, string actor, CancellationToken cancellationToken)
    {
        if (!IsLinkable(phone))
            return null;
        try
        {
            return await LinkOrThrowAsync(customerId, phone, actor, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogLinkFailed(logger, ex, phone, customerId);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A logged call's number {Phone} was not linked to customer {CustomerId}; the call is stored.")]
    private static partial void LogLinkFailed(ILogger logger, Exception exception, string phone, Guid customerId);

    private async Task<PhoneIdentityLink> LinkOrThrowAsync(Guid customerId, string phone, string actor, CancellationToken cancellationToken)
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
