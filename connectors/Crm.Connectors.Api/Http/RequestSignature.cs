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

    public static Outcome Verify(string secret, string? timestampHeader, string? signatureHeader, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (string.IsNullOrEmpty(timestampHeader) || string.IsNullOrEmpty(signatureHeader))
            return Outcome.Missing;
        if (!long.TryParse(timestampHeader, NumberStyles.None, CultureInfo.InvariantCulture, out var timestamp))
            return Outcome.Malformed;
        if (Math.Abs(now.ToUnixTimeSeconds() - timestamp) > tolerance.TotalSeconds)
            return Outcome.Stale;
        var expected = Encoding.ASCII.GetBytes(Compute(secret, timestamp, body));
        var given = Encoding.ASCII.GetBytes(signatureHeader.Trim().ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(expected, given) ? Outcome.Valid : Outcome.Mismatch;
    }
}
