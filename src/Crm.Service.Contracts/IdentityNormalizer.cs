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

    /// <summary>Lower-cases the domain and the local part (every mainstream provider treats them alike) and applies NFC.</summary>
    public static string Email(string value)
    {
        var trimmed = value.Trim().Normalize(NormalizationForm.FormC);
        var at = trimmed.LastIndexOf('@');
        if (at <= 0 || at == trimmed.Length - 1)
            throw new FormatException($"'{value}' is not an email address.");
        var domain = trimmed[(at + 1)..].TrimEnd('.');
        try
        {
            domain = new IdnMapping().GetAscii(domain);
        }
        catch (ArgumentException)
        {
            throw new FormatException($"'{value}' has an invalid domain.");
        }
        return trimmed[..at].ToLowerInvariant() + "@" + domain.ToLowerInvariant();
    }

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
