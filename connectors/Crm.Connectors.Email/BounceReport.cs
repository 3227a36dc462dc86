using System.Text.RegularExpressions;
using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// A delivery failure report: a multipart/report DSN (RFC 3464) or one of the common plain-text forms sent by
/// mailer daemons. It names our outbound messages through the Message-IDs we generated (<see cref="EmailIds.Outbound"/>),
/// found in the returned headers or anywhere in the report.
/// </summary>
internal sealed partial record BounceReport(IReadOnlyList<Guid> OutboundMessageIds, string Reason, bool Failed = true)
{
    /// <summary>The report in <paramref name="message"/>, or null when it is not a delivery report at all. A DSN whose
    /// recipients were only delayed, delivered, relayed or expanded is a report with <see cref="Failed"/> false: it
    /// marks nothing failed (the mail may still arrive) and opens no ticket.</summary>
    public static BounceReport? Read(MimeMessage message, byte[] raw)
    {
        var isDsn = message.Body is MultipartReport report && string.Equals(report.ReportType, "delivery-status", StringComparison.OrdinalIgnoreCase);
        if (!isDsn && !LooksLikePlainBounce(message))
            return null;
        var ids = ReturnedMessageIds(message, raw);
        if (isDsn && message.BodyParts.OfType<MessageDeliveryStatus>().FirstOrDefault() is { } status
            && !status.StatusGroups.Skip(1).Any(IsFailure) && status.StatusGroups.Count > 1)
        {
            var actions = string.Join(", ", status.StatusGroups.Skip(1).Select(g => g["Action"]?.Trim()).OfType<string>().Distinct(StringComparer.OrdinalIgnoreCase));
            return new BounceReport(ids, $"Delivery report ({actions}): not a failure", Failed: false);
        }
        var reason = DsnReason(message) ?? PlainReason(message) ?? "The receiving server returned the mail as undeliverable.";
        return new BounceReport(ids, reason.Length <= 500 ? reason : reason[..500] + "…");
    }

    private static bool IsFailure(HeaderList group) =>
        group["Action"]?.Trim() is not { } action || action.Equals("failed", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The outbound message the report answers: the Message-ID of the returned message (its message/rfc822 or
    /// text/rfc822-headers part, or an Original-Message-ID header), else "Message-ID:" lines quoted in the text.
    /// Never every id in the report: the returned headers' References name earlier replies of the thread, which
    /// were delivered. Only a report that quotes no Message-ID at all is searched anywhere.
    /// </summary>
    private static List<Guid> ReturnedMessageIds(MimeMessage message, byte[] raw)
    {
        var named = new List<string?> { message.Headers["Original-Message-ID"], message.Headers["X-Original-Message-ID"] };
        foreach (var part in message.BodyParts.OfType<MessagePart>())
            if (part.Message is { } returned)
                named.AddRange([returned.MessageId, returned.Headers["Original-Message-ID"], returned.Headers["X-Original-Message-ID"]]);
        var ids = named.Select(EmailIds.OutboundMessageIdOf).OfType<Guid>().Distinct().ToList();
        if (ids.Count > 0)
            return ids;
        var text = System.Text.Encoding.Latin1.GetString(raw);
        var quoted = QuotedMessageIdLine().Matches(text).Select(m => EmailIds.OutboundMessageIdOf(m.Groups[1].Value)).OfType<Guid>().Distinct().ToList();
        if (quoted.Count > 0 || QuotedMessageIdLine().IsMatch(text))
            return quoted;
        // Base64-encoded returned parts are rare; then only the report's own text can name the mail.
        return EmailIds.OutboundMessageIdsIn(text).ToList();
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
        // Every byte is a stranger's (anyone may send with MAIL FROM:<>): only lines of a sane length are matched, with
        // a pattern whose gaps are bounded, so a long line costs linear time (G12).
        var lines = text.Split('\n', MaxScannedLines + 1).Take(MaxScannedLines).Select(l => l.Trim()).Where(l => l.Length is > 0 and <= MaxLineLength).ToList();
        var line = lines.FirstOrDefault(IsSmtpReply) ?? lines.FirstOrDefault();
        return line is null ? null : $"Bounced: {line}";
    }

    private const int MaxScannedLines = 2000, MaxLineLength = 1000;

    private static bool IsSmtpReply(string line)
    {
        try
        {
            return SmtpReply().IsMatch(line);
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
    }

    /// <summary>A quoted "Message-ID: &lt;…&gt;" header line (of the returned mail) in a plain report, not one of the report itself.</summary>
    [GeneratedRegex(@"^[ \t>]*(?:Original-)?Message-ID:[ \t]*<?([^>\s]+)>?", RegexOptions.IgnoreCase | RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex QuotedMessageIdLine();

    [GeneratedRegex(@"undeliver|returned mail|delivery (status notification|failure|has failed)|failure notice|mail delivery (failed|subsystem)|non[- ]?delivery|could not be delivered|unzustellbar|nicht zustellbar|non remis|delivery failed", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex BounceSubject();

    [GeneratedRegex(@"\b[45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b|\b5\d\d\b.{0,200}?(?:user|mailbox|recipient|address)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 200)]
    private static partial Regex SmtpReply();
}
