using System.Globalization;
using System.Text;

namespace Crm.Service.Contracts;

/// <summary>Normalizes channel identities so that "Alice@Example.COM" and "alice@example.com" are one customer.</summary>
public static class IdentityNormalizer
{
    public static string Key(IdentityKind kind, string value, string channelAccountId) => kind switch
    {
        IdentityKind.Email => "email:" + Email(value),
        IdentityKind.Phone => "phone:" + Phone(value),
        IdentityKind.Telegram => "telegram:" + value.Trim(),
        IdentityKind.WebChat => "webchat:" + value.Trim(),
        // A bridge's own user ids mean nothing outside that channel account.
        IdentityKind.External => $"external:{channelAccountId}:{value.Trim()}",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown identity kind"),
    };

    /// <summary>An address the core accepts as an email identity and the SMTP sender as a recipient: at most 320
    /// characters, no whitespace, and <see cref="Email"/> takes it (no control or invisible characters, a domain IDNA
    /// maps). One rule for mail ingest, the sender and the reply API's Cc, so nothing accepted is refused later.</summary>
    public static bool IsEmailAddress(string? address)
    {
        if (address is not { Length: > 2 and <= 320 } || address.IndexOf('@') is not (> 0 and var at) || at >= address.Length - 1 || address.Any(char.IsWhiteSpace))
            return false;
        try
        {
            Email(address);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// Applies NFC, maps the domain by IDNA (what DNS resolves, so every spelling of it is the same host) and lower-cases
    /// the local part (every mainstream provider treats case alike), except where a non-ASCII letter would become an
    /// ASCII one: Unicode case mapping folds distinct code points together (the dotted İ lower-cases to "i"), and now
    /// that email identities are global, a mailbox that folded onto someone else's address would join that customer's
    /// profile and read their tickets. (Folding stays otherwise as it was, so identity keys stored by earlier versions
    /// keep naming the same customer.) Control and invisible format characters
    /// (zero-width joiners, bidi overrides) are refused: no mail system assigns them, and they only disguise an address.
    /// </summary>
    public static string Email(string value)
    {
        var trimmed = value.Trim().Normalize(NormalizationForm.FormC);
        var at = trimmed.LastIndexOf('@');
        if (at <= 0 || at == trimmed.Length - 1)
            throw new FormatException($"'{value}' is not an email address.");
        foreach (var rune in trimmed.EnumerateRunes())
        {
            // By rune, so invisible characters beyond the BMP (tag characters) are seen; a lone surrogate reads as U+FFFD.
            if (Rune.IsControl(rune) || Rune.GetUnicodeCategory(rune) == UnicodeCategory.Format || rune == Rune.ReplacementChar)
                throw new FormatException($"'{value}' contains a control, invisible or invalid character (U+{rune.Value:X4}).");
        }
        var domain = trimmed[(at + 1)..].TrimEnd('.');
        try
        {
            domain = new IdnMapping().GetAscii(domain);
        }
        catch (ArgumentException)
        {
            throw new FormatException($"'{value}' has an invalid domain.");
        }
        return LowerLocalPart(trimmed[..at]) + "@" + domain.ToLowerInvariant();
    }

    /// <summary>Lower-cases as before (so stored identity keys stay valid), except that a non-ASCII letter whose lower
    /// case is ASCII (the dotted İ → "i") is kept: that mapping is how one mailbox's spelling lands on another's.</summary>
    private static string LowerLocalPart(string value) =>
        string.Create(value.Length, value, static (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
            {
                var lower = char.ToLowerInvariant(source[i]);
                span[i] = !char.IsAscii(source[i]) && char.IsAscii(lower) ? source[i] : lower;
            }
        });

    /// <summary>Keeps a leading '+' and the digits; "+1 (555) 010-2030" becomes "+15550102030".</summary>
    public static string Phone(string value)
    {
        var builder = new StringBuilder(value.Length);
        foreach (var c in value.Trim())
        {
            if (char.IsAsciiDigit(c))
                builder.Append(c);
            else if (c == '+' && builder.Length == 0)
                builder.Append(c);
        }
        var digits = builder.ToString().TrimStart('+');
        if (digits.Length is < 3 or > 20)
            throw new FormatException($"'{value}' is not a phone number.");
        return builder.ToString();
    }
}
