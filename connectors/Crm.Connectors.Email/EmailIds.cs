using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Crm.Connectors.Email;

/// <summary>
/// The one place message ids of the email channel are built and read: the dedupe key of an inbound mail, the thread
/// key of a new conversation, and our own Message-IDs, generated from the outbound message's id so that a reply
/// (or a bounce) naming one can be mapped back without a table.
/// </summary>
internal static partial class EmailIds
{
    /// <summary>Longest Message-ID kept as it is; longer ones are hashed so they fit an external id and a thread key.</summary>
    private const int MaxKeptLength = 200;

    /// <summary>The dedupe key of a Message-ID as MimeKit gives it (without angle brackets); null when there is none.</summary>
    public static string? Normalize(string? messageId)
    {
        var id = messageId?.Trim().Trim('<', '>').Trim();
        if (string.IsNullOrEmpty(id))
            return null;
        return id.Length <= MaxKeptLength && !id.Any(char.IsControl) ? id : "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)));
    }

    /// <summary>The dedupe key of a mail without Message-ID: a hash of its bytes, so a redelivery of the same bytes is recognised.</summary>
    public static string OfRawSource(ReadOnlySpan<byte> raw) => "raw-sha256:" + Convert.ToHexStringLower(SHA256.HashData(raw));

    /// <summary>Our Message-ID for an outbound message (without angle brackets): "crm.{id}@{domain}".</summary>
    public static string Outbound(Guid messageId, string domain) => $"crm.{messageId:N}@{domain}";

    /// <summary>The outbound message id inside one of our Message-IDs, whatever domain it carries (an account may have changed address).</summary>
    public static Guid? OutboundMessageIdOf(string? messageId) =>
        messageId is not null && OutboundPattern().Match(messageId) is { Success: true } match && Guid.TryParseExact(match.Groups[1].Value, "N", out var id) ? id : null;

    /// <summary>Every outbound message id named anywhere in <paramref name="text"/> (a bounce quoting our headers).</summary>
    public static IEnumerable<Guid> OutboundMessageIdsIn(string text) =>
        OutboundPattern().Matches(text).Select(m => Guid.TryParseExact(m.Groups[1].Value, "N", out var id) ? id : (Guid?)null).OfType<Guid>().Distinct();

    [GeneratedRegex(@"crm\.([0-9a-f]{32})@", RegexOptions.CultureInvariant)]
    private static partial Regex OutboundPattern();
}
