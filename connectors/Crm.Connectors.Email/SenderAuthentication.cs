using MimeKit;
using MimeKit.Cryptography;

namespace Crm.Connectors.Email;

/// <summary>
/// Whether the receiving mail server vouched for a mail's From address: the topmost <c>Authentication-Results</c>
/// header (RFC 8601) written by the trusted server (its authserv-id) says dmarc=pass for the From domain, or dkim=pass
/// with a signing domain the From address belongs to. Headers of other servers are a stranger's words and ignored; a
/// server is expected to remove headers that claim its own authserv-id from incoming mail (RFC 8601 section 5).
/// </summary>
internal static class SenderAuthentication
{
    public static bool IsAuthenticated(MimeMessage message, string? trustedAuthServId, string fromAddress)
    {
        var at = fromAddress.LastIndexOf('@');
        if (string.IsNullOrWhiteSpace(trustedAuthServId) || at < 1)
            return false;
        var domain = fromAddress[(at + 1)..].Trim().ToLowerInvariant();
        // The trusted server's header is found by its authserv-id, read without the full parser: a header of it that
        // MimeKit cannot parse must end the check, not hand it to a stranger's header further down. Exactly one may
        // name the trusted id; a second means the server kept a forged one (or appended its own below it).
        var trusted = message.Headers.Where(h => h.Id == HeaderId.AuthenticationResults && string.Equals(AuthServIdOf(h.Value), trustedAuthServId.Trim(), StringComparison.OrdinalIgnoreCase)).Take(2).ToList();
        if (trusted.Count != 1 || !AuthenticationResults.TryParse(trusted[0].RawValue, out var results))
            return false;
        return results.Results.Any(r => Passes(r, "dmarc", "header.from", domain) || Passes(r, "dkim", "header.d", domain));
    }

    /// <summary>The text before the first ';' (RFC 8601: authserv-id, then an optional version number), comments left out.</summary>
    internal static string AuthServIdOf(string value)
    {
        var head = value.Split(';', 2)[0];
        var text = new System.Text.StringBuilder(head.Length);
        var depth = 0;
        foreach (var c in head)
        {
            if (c == '(')
                depth++;
            else if (c == ')' && depth > 0)
                depth--;
            else if (depth == 0)
                text.Append(c);
        }
        var words = text.ToString().Split((char[])[' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries);
        return words.Length > 0 ? words[0] : "";
    }

    private static bool Passes(AuthenticationMethodResult result, string method, string property, string domain)
    {
        if (!string.Equals(result.Method, method, StringComparison.OrdinalIgnoreCase) || !string.Equals(result.Result, "pass", StringComparison.OrdinalIgnoreCase))
            return false;
        var named = result.Properties.FirstOrDefault(p => string.Equals($"{p.PropertyType}.{p.Property}", property, StringComparison.OrdinalIgnoreCase))?.Value?.Trim().ToLowerInvariant();
        // dmarc=pass may omit header.from (it is then about the From header); dkim=pass must name the signer.
        if (named is null)
            return method == "dmarc";
        named = named.TrimStart('@');
        if (named.Contains('@', StringComparison.Ordinal))
            named = named[(named.LastIndexOf('@') + 1)..];
        return domain == named || domain.EndsWith("." + named, StringComparison.Ordinal);
    }
}
