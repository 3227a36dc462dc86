using System.Text.RegularExpressions;
using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// The original sender of a mail an agent forwarded to the mailbox: the From line of the first forwarded header block
/// in the text, else the From of the one attached message/rfc822 (a "forward as attachment"), as Gmail
/// ("---------- Forwarded message ---------"), Outlook ("-----Original Message-----", or a line of underscores then
/// "From: … Sent: …") and Apple Mail ("Begin forwarded message:") write it.
/// </summary>
internal static partial class ForwardedMail
{
    /// <summary>How far into the text a forwarded block is looked for (the forwarder's note above it is short), how far
    /// below its marker its From line, and the longest From value read (every byte of it is a stranger's).</summary>
    private const int MaxScannedLines = 60, MaxHeaderLines = 12, MaxFromLength = 1000;

    /// <summary>
    /// The original sender, or null when the mail is not a forward. A reply is never a forward (Outlook writes the same
    /// "-----Original Message-----" or underscore block under replies): a subject starting with a reply prefix ends it,
    /// and the Outlook markers count only under a forward prefix ("FW:"). The header block the forwarding client wrote
    /// wins over attached mail; an attached message/rfc822 counts only as a forward as attachment (no block in the text,
    /// one attached message).
    /// </summary>
    public static MailboxAddress? OriginalSender(MimeMessage message, string? text)
    {
        if (ReplyPrefix().IsMatch(message.Subject ?? ""))
            return null;
        var forwardSubject = ForwardPrefix().IsMatch(message.Subject ?? "");
        if (!string.IsNullOrEmpty(text))
        {
            var lines = text.Split('\n', MaxScannedLines + 1);
            for (var i = 0; i < Math.Min(lines.Length, MaxScannedLines); i++)
            {
                var line = lines[i].Trim();
                if (line.Length > 200 || !(ForwardMarker().IsMatch(line) || (forwardSubject && OutlookMarker().IsMatch(line))))
                    continue;
                for (var j = i + 1; j < Math.Min(lines.Length, i + 1 + MaxHeaderLines); j++)
                {
                    var candidate = lines[j].Trim();
                    if (candidate.Length <= MaxFromLength && FromLine().Match(candidate) is { Success: true } from)
                        return AddressOf(from.Groups[1].Value);
                }
                return null;
            }
        }
        var attached = message.BodyParts.OfType<MessagePart>().Take(2).ToList();
        return attached is [{ Message: { } only }] ? only.From.Mailboxes.FirstOrDefault(m => MimeMessageMapper.IsAddress(m.Address)) : null;
    }

    /// <summary>"Name &lt;a@b&gt;", "Name [mailto:a@b]", "a@b" or "Name a@b". The address is the mailbox's, never one
    /// written into the display name: RFC 5322 parsing first, else the last bracketed address on the line.</summary>
    internal static MailboxAddress? AddressOf(string value)
    {
        if (value.Length > MaxFromLength)
            return null;
        if (InternetAddressList.TryParse(value, out var list) && list.Mailboxes.ToList() is [var parsed] && MimeMessageMapper.IsAddress(parsed.Address))
            return new MailboxAddress(parsed.Name is { Length: > 0 and <= 200 } parsedName ? parsedName : null, parsed.Address);
        var match = AngleOrMailto().Matches(value).LastOrDefault();
        string address, name;
        if (match is not null)
        {
            address = match.Groups[1].Value;
            name = value[..match.Index];
        }
        else if (BareAddress().Match(value) is { Success: true } bare)
        {
            address = bare.Value;
            name = value[..bare.Index];
        }
        else
            return null;
        address = address.Trim().TrimEnd('.', ',', ';');
        if (!MimeMessageMapper.IsAddress(address))
            return null;
        name = name.Trim().Trim('"', '\'', '*').Trim();
        return new MailboxAddress(name.Length is > 0 and <= 200 && !name.Contains('@') ? name : null, address);
    }

    /// <summary>The subject without the forward prefixes clients add ("Fwd:", "FW:", "WG:", "TR:", "RV:").</summary>
    public static string? Subject(string? subject) => subject is null ? null : ForwardPrefix().Replace(subject, "").Trim();

    /// <summary>Markers only forwards carry (Gmail, Apple Mail, localized clients).</summary>
    [GeneratedRegex(@"^(?:-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado|Doorgestuurd bericht)\s*-{2,}|Begin forwarded message:)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ForwardMarker();

    /// <summary>Outlook's block, under forwards and replies alike.</summary>
    [GeneratedRegex(@"^(?:-{2,}\s*Original Message\s*-{2,}|_{10,})$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex OutlookMarker();

    [GeneratedRegex(@"^\s*(?:re|aw|sv|antw|ant|rif|odp|res|vs|r|回复|答复|回覆)\s*[:：]", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ReplyPrefix();

    [GeneratedRegex(@"^\*?(?:From|Von|De|Van|Da)\s*:\s*\*?\s*(.+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex FromLine();

    [GeneratedRegex(@"[<\[](?:mailto:)?((?>[^<>\[\]\s@]+)@(?>[^<>\[\]\s]+))[>\]]", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex AngleOrMailto();

    [GeneratedRegex(@"[^\s<>""'\[\]()]+@[^\s<>""'\[\]()]+", RegexOptions.CultureInvariant)]
    private static partial Regex BareAddress();

    [GeneratedRegex(@"^(?:\s*(?:fwd?|fw|wg|tr|rv|enc)\s*:\s*)+", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ForwardPrefix();
}
