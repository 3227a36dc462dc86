using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Crm.Service.Contracts;

/// <summary>A phone call an agent logged (issue 17, "Log a call"): recorded, never sent anywhere.</summary>
[GenerateSerializer, Immutable, Alias("crm.PhoneCall")]
public sealed record PhoneCall
{
    /// <summary>Inbound (the customer called) or Outbound (the agent called).</summary>
    [Id(0)] public required MessageDirection Direction { get; init; }
    /// <summary>The number, normalized by <see cref="IdentityNormalizer.Phone"/>.</summary>
    [Id(1)] public required string Phone { get; init; }
    [Id(2)] public required DateTimeOffset At { get; init; }
    [Id(3)] public int DurationSeconds { get; init; }
    [Id(4)] public string? Summary { get; init; }
    [Id(5)] public string? Result { get; init; }
    /// <summary>Whether the call reached the other person, as the agent said (review CX1); null from a client that does
    /// not say, for which <c>TicketRules.Connected</c> falls back to the duration and the result's words.</summary>
    [Id(6)] public bool? Connected { get; init; }
}

/// <summary>Rules and the timeline text of logged calls, shared by the ticket grain, the API and the console.</summary>
public static class PhoneCalls
{
    /// <summary>The channel a logged call's message names (its ChannelAccountId). A call has no conversation, which is
    /// what tells it from a message of a channel account that happens to be called "phone".</summary>
    public const string Channel = "phone";
    public const int MaxSummaryLength = 20_000;
    public const int MaxResultLength = 200;
    public const int MaxDurationSeconds = 24 * 60 * 60;
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>Checks a call (already normalized); throws <see cref="DomainException"/> naming the field at fault.</summary>
    public static void Check(PhoneCall call, DateTimeOffset now)
    {
        if (call.Direction is not (MessageDirection.Inbound or MessageDirection.Outbound))
            throw new DomainException(DomainErrorKind.Invalid, "direction is \"in\" or \"out\".", "direction");
        if (string.IsNullOrEmpty(call.Phone))
            throw new DomainException(DomainErrorKind.Invalid, "phone is required.", "phone");
        // "Not in the future", with a few minutes for the clocks of the client and the server (review CS6).
        if (call.At.Year < 2000 || call.At > now.Add(MaxClockSkew))
            throw new DomainException(DomainErrorKind.Invalid, "time is when the call happened, not in the future.", "time");
        if (call.DurationSeconds is < 0 or > MaxDurationSeconds)
            throw new DomainException(DomainErrorKind.Invalid, $"durationSeconds is between 0 and {MaxDurationSeconds}.", "durationSeconds");
        if (call.Summary?.Length > MaxSummaryLength)
            throw new DomainException(DomainErrorKind.Invalid, $"summary is at most {MaxSummaryLength} characters.", "summary");
        if (call.Result is { } result && (result.Length > MaxResultLength || result.Any(char.IsControl)))
            throw new DomainException(DomainErrorKind.Invalid, $"result is one line of at most {MaxResultLength} characters.", "result");
    }

    /// <summary>The first line of the timeline text: "Call in: +15550102030, 2025-01-02 10:00 UTC, 5:30".</summary>
    public static string Title(PhoneCall call) => string.Create(CultureInfo.InvariantCulture,
        $"Call {(call.Direction == MessageDirection.Inbound ? "in" : "out")}: {call.Phone}, {call.At.UtcDateTime:yyyy-MM-dd HH:mm} UTC, {call.DurationSeconds / 60}:{call.DurationSeconds % 60:00}");

    /// <summary>What the timeline shows: the title, whether it was answered (when the agent said), the result, then the
    /// summary.</summary>
    public static string Text(PhoneCall call)
    {
        var text = new StringBuilder(Title(call));
        if (call.Connected is { } connected)
            text.Append(connected ? "\nAnswered" : "\nNot answered");
        if (!string.IsNullOrWhiteSpace(call.Result))
            text.Append("\nResult: ").Append(call.Result.Trim());
        if (!string.IsNullOrWhiteSpace(call.Summary))
            text.Append("\n\n").Append(call.Summary.Trim());
        return text.ToString();
    }

    /// <summary>Tells a retry (the same call again) from another call reusing its idempotency key. The time is left
    /// out: a request without one is stamped "now", which a retry a moment later would change. <c>Connected</c> is added
    /// only when given, so a key stored before it existed still matches its retry.</summary>
    public static string Fingerprint(string target, PhoneCall call) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
        string.Join('\n', "call", target, call.Direction, call.Phone, call.DurationSeconds, call.Result, call.Summary)
        + (call.Connected is { } connected ? (connected ? "\nconnected" : "\nmissed") : ""))));
}
