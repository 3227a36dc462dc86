using System.Text.RegularExpressions;
using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// The original sender of a mail an agent forwarded to the mailbox: the From of an attached message/rfc822 (a
/// "forward as attachment"), else the From line of the first forwarded header block in the text, as Gmail
/// ("---------- Forwarded message ---------"), Outlook ("-----Original Message-----", or a line of underscores then
/// "From: … Sent: …") and Apple Mail ("Begin forwarded message:") write it.
/// </summary>
internal static partial class ForwardedMail
{
    /// <summary>How far into the text a forwarded block is looked for, and how far below its marker its From line.</summary>
    private const int MaxScannedLines = 400, MaxHeaderLines = 12;

    public static MailboxAddress? OriginalSender(MimeMessage message, string? text)
    {
        foreach (var part in message.BodyParts.OfType<MessagePart>())
            if (part.Message?.From.Mailboxes.FirstOrDefault(m => MimeMessageMapper.IsAddress(m.Address)) is { } attached)
                return attached;
        if (string.IsNullOrEmpty(text))
            return null;
        var lines = text.Split('\n', MaxScannedLines + 1);
        for (var i = 0; i < Math.Min(lines.Length, MaxScannedLines); i++)
        {
            if (!Marker().IsMatch(lines[i].Trim()))
                continue;
            for (var j = i + 1; j < Math.Min(lines.Length, i + 1 + MaxHeaderLines); j++)
                if (FromLine().Match(lines[j].Trim()) is { Success: true } from && AddressOf(from.Groups[1].Value) is { } sender)
                    return sender;
        }
        return null;
    }

    /// <summary>"Name &lt;a@b&gt;", "Name [mailto:a@b]", "a@b" or "Name a@b".</summary>
    internal static MailboxAddress? AddressOf(string value)
    {
        var match = AngleOrMailto().Match(value);
        string address, name;
        if (match.Success)
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
        return new MailboxAddress(name.Length is > 0 and <= 200 ? name : null, address);
    }

    /// <summary>The subject without the forward prefixes clients add ("Fwd:", "FW:", "WG:", "TR:", "RV:").</summary>
    public static string? Subject(string? subject) => subject is null ? null : ForwardPrefix().Replace(subject, "").Trim();

    [GeneratedRegex(@"^(?:-{2,}\s*(?:Forwarded message|Original Message|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado|Doorgestuurd bericht)\s*-{2,}|Begin forwarded message:|_{10,})$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Marker();

    [GeneratedRegex(@"^\*?(?:From|Von|De|Van|Da)\s*:\s*\*?\s*(.+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex FromLine();

    [GeneratedRegex(@"[<\[](?:mailto:)?([^<>\[\]\s]+@[^<>\[\]\s]+)[>\]]", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex AngleOrMailto();

    [GeneratedRegex(@"[^\s<>""'\[\]()]+@[^\s<>""'\[\]()]+", RegexOptions.CultureInvariant)]
    private static partial Regex BareAddress();

    [GeneratedRegex(@"^(?:\s*(?:fwd?|fw|wg|tr|rv|enc)\s*:\s*)+", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ForwardPrefix();
}
