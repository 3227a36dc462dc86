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

    /// <summary>Whether MimeKit accepts the id in In-Reply-To/References of a mail we send: a stranger's id such as "."
    /// is kept for dedupe but would make composing the answer throw, on every retry.</summary>
    public static bool IsSendable(string id)
    {
        try
        {
            _ = new MimeKit.MimeMessage { InReplyTo = id };
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>The dedupe key of a mail without Message-ID: a hash of its bytes, so a redelivery of the same bytes is recognised.</summary>
    public static string OfRawSource(ReadOnlySpan<byte> raw) => "raw-sha256:" + Convert.ToHexStringLower(SHA256.HashData(raw));

    /// <summary>Separates a Message-ID from the sender hash in a dedupe key; '|' ends no id we keep (see <see cref="MessageIdOf"/>).</summary>
    public const string SenderQualifier = "|from:";

    /// <summary>The thread key of a conversation opened by a reply to a message we never stored (its root): the root
    /// qualified by the sender, so this sender's later replies to the same root join it (Zammad #5716).</summary>
    public static string RootThreadKey(string rootMessageId, string senderAddress) => "root:" + DedupeKey(rootMessageId, senderAddress);

    /// <summary>What the root thread keys of every sender of <paramref name="rootMessageId"/> start with.</summary>
    public static string RootThreadKeyPrefix(string rootMessageId) => "root:" + rootMessageId + SenderQualifier;

    /// <summary>
    /// The dedupe key (and thread key of a new conversation) of an inbound mail: its Message-ID qualified by a hash
    /// of the sender address, so a stranger who reuses someone else's Message-ID is not deduped against (or threaded
    /// into) that mail. A hash of the raw bytes already covers the sender and is kept as it is.
    /// </summary>
    /// <remarks>Mails stored before the qualifier existed keep their bare Message-ID; the ingest recognises a
    /// redelivery of one by its bare id when its conversation is the same sender's.</remarks>
    public static string DedupeKey(string messageIdKey, string senderAddress)
    {
        if (messageIdKey.StartsWith("raw-sha256:", StringComparison.Ordinal))
            return messageIdKey;
        var sender = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(senderAddress.Trim().ToLowerInvariant())))[..16];
        return messageIdKey + SenderQualifier + sender;
    }

    /// <summary>The Message-ID inside a dedupe key (a bare, pre-qualifier key is returned as it is).</summary>
    public static string MessageIdOf(string dedupeKey)
    {
        var at = dedupeKey.LastIndexOf(SenderQualifier, StringComparison.Ordinal);
        return at > 0 && dedupeKey.Length - at == SenderQualifier.Length + 16 ? dedupeKey[..at] : dedupeKey;
    }

    /// <summary>Our Message-ID for an outbound message (without angle brackets): "crm.{id}@{domain}".</summary>
    public static string Outbound(Guid messageId, string domain) => $"crm.{messageId:N}@{domain}";

    /// <summary>The outbound message id inside one of our Message-IDs, whatever domain it carries (an account may have changed address).</summary>
    public static Guid? OutboundMessageIdOf(string? messageId) =>
        messageId is not null && OutboundPattern().Match(messageId) is { Success: true } match && Guid.TryParseExact(match.Groups[1].Value, "N", out var id) ? id : null;

    /// <summary>Every outbound message id named anywhere in <paramref name="text"/> (a bounce quoting our headers).</summary>
    public static IEnumerable<Guid> OutboundMessageIdsIn(string text) =>
        OutboundPattern().Matches(text).Select(m => Guid.TryParseExact(m.Groups[1].Value, "N", out var id) ? id : (Guid?)null).OfType<Guid>().Distinct();

    /// <summary>Most ticket tags of one subject that are looked up, and how far into the subject they are looked for.</summary>
    public const int MaxTicketTags = 3, TicketTagScanLength = 500;

    /// <summary>
    /// The ticket numbers a subject names ("[#10042]"): the distinct numbers of the first <see cref="MaxTicketTags"/>
    /// tags in its first <see cref="TicketTagScanLength"/> characters. Bounded because every byte of a subject is the
    /// sender's: a subject of 25,000 tags must not cost 25,000 lookups.
    /// </summary>
    public static IReadOnlyList<long> TicketNumbers(string? subject)
    {
        if (string.IsNullOrEmpty(subject))
            return [];
        var numbers = new List<long>(MaxTicketTags);
        var scanned = subject.Length <= TicketTagScanLength ? subject : subject[..TicketTagScanLength];
        foreach (Match tag in TicketTag().Matches(scanned))
        {
            if (long.TryParse(tag.Groups[1].ValueSpan, out var number) && !numbers.Contains(number))
                numbers.Add(number);
            if (numbers.Count == MaxTicketTags)
                break;
        }
        return numbers;
    }

    [GeneratedRegex(@"\[#(\d{1,18})\]", RegexOptions.CultureInvariant)]
    private static partial Regex TicketTag();

    [GeneratedRegex(@"crm\.([0-9a-f]{32})@", RegexOptions.CultureInvariant)]
    private static partial Regex OutboundPattern();
}
