using System.Text.RegularExpressions;
using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// A delivery failure report: a multipart/report DSN (RFC 3464) or one of the common plain-text forms sent by
/// mailer daemons. It names our outbound messages through the Message-IDs we generated (<see cref="EmailIds.Outbound"/>),
/// found in the returned headers or anywhere in the report.
/// </summary>
internal sealed partial record BounceReport(IReadOnlyList<Guid> OutboundMessageIds, string Reason)
{
    /// <summary>The report in <paramref name="message"/>, or null when it is not a bounce.</summary>
    public static BounceReport? Read(MimeMessage message, byte[] raw)
    {
        var isDsn = message.Body is MultipartReport report && string.Equals(report.ReportType, "delivery-status", StringComparison.OrdinalIgnoreCase);
        if (!isDsn && !LooksLikePlainBounce(message))
            return null;
        var reason = DsnReason(message) ?? PlainReason(message) ?? "The receiving server returned the mail as undeliverable.";
        // Our ids can appear in the returned headers (message/rfc822, text/rfc822-headers) or the quoted text; the raw
        // bytes hold them all. Base64-encoded returned parts are rare and then only the report's own headers help.
        var text = System.Text.Encoding.Latin1.GetString(raw);
        var ids = EmailIds.OutboundMessageIdsIn(text).ToList();
        return new BounceReport(ids, reason.Length <= 500 ? reason : reason[..500] + "…");
    }

    private static bool LooksLikePlainBounce(MimeMessage message)
    {
        var from = (message.From.Mailboxes.FirstOrDefault()?.Address ?? "").Split('@')[0].ToLowerInvariant();
        var daemon = from is "mailer-daemon" or "postmaster" or "mail-daemon" || message.Headers[HeaderId.ReturnPath]?.Trim() is "<>";
        return daemon && BounceSubject().IsMatch(message.Subject ?? "");
    }

    private static string? DsnReason(MimeMessage message)
    {
        var status = message.BodyParts.OfType<MessageDeliveryStatus>().FirstOrDefault();
        if (status is null)
            return null;
        foreach (var group in status.StatusGroups.Skip(1))
        {
            var action = group["Action"]?.Trim();
            if (action is not null && !action.Equals("failed", StringComparison.OrdinalIgnoreCase))
                continue;
            var recipient = (group["Final-Recipient"] ?? group["Original-Recipient"])?.Split(';').Last().Trim();
            var diagnostic = group["Diagnostic-Code"]?.Split(';', 2).Last().Trim();
            var code = group["Status"]?.Trim();
            return $"Bounced{(recipient is null ? "" : $" for {recipient}")}: {diagnostic ?? code ?? "failed"}";
        }
        return null;
    }

    private static string? PlainReason(MimeMessage message)
    {
        var text = message.TextBody;
        if (string.IsNullOrWhiteSpace(text))
            return null;
        var line = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => SmtpReply().IsMatch(l))
            ?? text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0);
        return line is null ? null : $"Bounced: {line}";
    }

    [GeneratedRegex(@"undeliver|returned mail|delivery (status notification|failure|has failed)|failure notice|mail delivery (failed|subsystem)|non[- ]?delivery|could not be delivered|unzustellbar|nicht zustellbar|non remis|delivery failed", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex BounceSubject();

    [GeneratedRegex(@"\b[45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b|\b5\d\d\b.*(user|mailbox|recipient|address)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SmtpReply();
}
