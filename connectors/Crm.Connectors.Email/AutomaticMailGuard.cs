using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// Loop protection: whether a mail was written by a machine (then nothing automatic may answer it). The per-recipient
/// cap on automatic mail over a rolling window, the second guard against two auto-responders ping-ponging through us,
/// is kept in the store (<see cref="Crm.Connectors.Abstractions.IAutomaticMailStore"/>), so a restart does not reset it.
/// </summary>
internal static class AutomaticMailGuard
{
    /// <summary>Why <paramref name="message"/> must get no automatic answer, or null when a human wrote it.</summary>
    public static string? AutomaticReason(MimeMessage message, IEnumerable<string> ownAddresses)
    {
        var headers = message.Headers;
        if (headers["Auto-Submitted"] is { } autoSubmitted && !autoSubmitted.Trim().StartsWith("no", StringComparison.OrdinalIgnoreCase))
            return $"Auto-Submitted: {autoSubmitted.Trim()}";
        if (headers["Precedence"]?.Trim().ToLowerInvariant() is "bulk" or "list" or "junk" or "auto_reply")
            return $"Precedence: {headers["Precedence"]!.Trim()}";
        foreach (var name in (string[])["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id", "List-Unsubscribe", "Feedback-ID"])
            if (headers.Contains(name) && !(name == "X-Auto-Response-Suppress" && headers[name]!.Trim().Equals("None", StringComparison.OrdinalIgnoreCase)))
                return $"{name} header";
        var from = message.From.Mailboxes.FirstOrDefault()?.Address ?? message.Sender?.Address;
        if (from is not null)
        {
            var local = from.Split('@')[0].ToLowerInvariant();
            if (local is "mailer-daemon" or "postmaster" or "noreply" or "no-reply" or "donotreply" or "do-not-reply" || local.StartsWith("bounce", StringComparison.Ordinal))
                return $"sender {from}";
            if (ownAddresses.Contains(from, StringComparer.OrdinalIgnoreCase))
                return $"sender {from} is one of our own addresses";
        }
        if (message.Headers[HeaderId.ReturnPath]?.Trim() is "<>" or "")
            return "empty Return-Path (a delivery report)";
        return null;
    }
}
