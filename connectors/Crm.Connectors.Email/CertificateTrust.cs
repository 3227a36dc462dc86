using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Crm.Connectors.Abstractions;

namespace Crm.Connectors.Email;

/// <summary>
/// Certificate validation of IMAP and SMTP connections: the system's validation, and besides it exactly one
/// certificate an admin pinned by its SHA-256 fingerprint (a self-signed server certificate). There is no switch that
/// accepts any certificate: a pinned fingerprint trusts that certificate only.
/// </summary>
internal static class CertificateTrust
{
    /// <summary>The callback for a client: valid certificates, or the pinned one.</summary>
    public static RemoteCertificateValidationCallback Validator(string? trustedFingerprint)
    {
        var pinned = Normalize(trustedFingerprint);
        return (_, certificate, _, errors) =>
            errors == SslPolicyErrors.None
            || (pinned is not null && certificate is not null && errors != SslPolicyErrors.RemoteCertificateNotAvailable
                && CryptographicOperations.FixedTimeEquals(Convert.FromHexString(pinned), SHA256.HashData(certificate.GetRawCertData())));
    }

    /// <summary>The SHA-256 fingerprint of a certificate as the settings take it (hex, upper case, no colons).</summary>
    public static string Fingerprint(X509Certificate certificate) => Convert.ToHexString(SHA256.HashData(certificate.GetRawCertData()));

    internal static SettingsProblem? Problem(string field, string? value) =>
        value is null || Normalize(value) is not null ? null
            : new SettingsProblem(field, $"{field} must be the certificate's SHA-256 fingerprint: 64 hex digits (colons or spaces allowed), e.g. from `openssl x509 -noout -fingerprint -sha256`.");

    private static string? Normalize(string? fingerprint)
    {
        if (string.IsNullOrWhiteSpace(fingerprint))
            return null;
        var hex = new string([.. fingerprint.Where(c => c is not (':' or ' ' or '-'))]).ToUpperInvariant();
        return hex.Length == 64 && hex.All(char.IsAsciiHexDigit) ? hex : null;
    }
}
