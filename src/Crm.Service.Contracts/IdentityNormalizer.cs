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

    /// <summary>
    /// Applies NFC, maps the domain by IDNA (what DNS resolves, so every spelling of it is the same host) and lower-cases
    /// the local part's ASCII letters only (every mainstream provider treats those alike). Non-ASCII letters of the local
    /// part are kept as written (NFC still makes canonically equal spellings one): Unicode case mapping folds distinct
    /// code points together (the dotted İ lower-cases to "i"; the long ſ and the dotless ı upper-case to "S" and "I"),
    /// and now that email identities are global, a mailbox that folded onto someone else's address would join that
    /// customer's profile and read their tickets. Control and invisible format characters
    /// (zero-width joiners, bidi overrides) are refused: no mail system assigns them, and they only disguise an address.
    /// </summary>
    public static string Email(string value)
    {
        var trimmed = value.Trim().Normalize(NormalizationForm.FormC);
        var at = trimmed.LastIndexOf('@');
        if (at <= 0 || at == trimmed.Length - 1)
            throw new FormatException($"'{value}' is not an email address.");
        foreach (var c in trimmed)
        {
            if (char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format)
                throw new FormatException($"'{value}' contains a control or invisible character (U+{(int)c:X4}).");
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
        return AsciiLower(trimmed[..at]) + "@" + domain.ToLowerInvariant();
    }

    private static string AsciiLower(string value) =>
        string.Create(value.Length, value, static (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
                span[i] = char.IsAsciiLetterUpper(source[i]) ? (char)(source[i] | 0x20) : source[i];
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
