using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Crm.Connectors.Api.Http;

/// <summary>
/// HMAC-SHA256 request signing, both directions: <c>X-Crm-Timestamp</c> carries Unix seconds and
/// <c>X-Crm-Signature</c> carries <c>sha256=</c> + hex(HMAC(secret, timestamp + "." + raw body)).
/// Signing the timestamp with the body lets the receiver refuse replays of an old request.
/// </summary>
public static class RequestSignature
{
    public const string TimestampHeader = "X-Crm-Timestamp";
    public const string SignatureHeader = "X-Crm-Signature";
    private const string Scheme = "sha256=";

    public static string Compute(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.ASCII.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        var payload = new byte[prefix.Length + body.Length];
        prefix.CopyTo(payload, 0);
        body.CopyTo(payload.AsSpan(prefix.Length));
        return Scheme + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), payload));
    }

    public enum Outcome { Valid, Missing, Malformed, Stale, Mismatch }

    /// <summary>The checks that need no body (present, well-formed, fresh); <see cref="Outcome.Valid"/> when they pass,
    /// so a request can be refused before its body is read.</summary>
    public static Outcome CheckHeaders(string? timestampHeader, string? signatureHeader, DateTimeOffset now, TimeSpan tolerance) =>
        CheckHeaders(timestampHeader, signatureHeader, now, tolerance, out _);

    private static Outcome CheckHeaders(string? timestampHeader, string? signatureHeader, DateTimeOffset now, TimeSpan tolerance, out long timestamp)
    {
        timestamp = 0;
        if (string.IsNullOrEmpty(timestampHeader) || string.IsNullOrEmpty(signatureHeader))
            return Outcome.Missing;
        if (!long.TryParse(timestampHeader, NumberStyles.None, CultureInfo.InvariantCulture, out timestamp))
            return Outcome.Malformed;
        return Math.Abs(now.ToUnixTimeSeconds() - timestamp) > tolerance.TotalSeconds ? Outcome.Stale : Outcome.Valid;
    }

    public static Outcome Verify(string secret, string? timestampHeader, string? signatureHeader, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (CheckHeaders(timestampHeader, signatureHeader, now, tolerance, out var timestamp) is var headers and not Outcome.Valid)
            return headers;
        var expected = Encoding.ASCII.GetBytes(Compute(secret, timestamp, body));
        var given = Encoding.ASCII.GetBytes(signatureHeader!.Trim().ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(expected, given) ? Outcome.Valid : Outcome.Mismatch;
    }
}
