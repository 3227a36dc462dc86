using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// Loop protection: whether a mail was written by a machine (then nothing automatic may answer it), and a per-recipient
/// cap on automatic mail over a rolling window, so two auto-responders can never ping-pong through us.
/// </summary>
internal sealed class AutomaticMailGuard(IOptions<EmailChannelOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Queue<DateTimeOffset>> _sent = new(StringComparer.OrdinalIgnoreCase);

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

    /// <summary>Reserves one automatic mail to <paramref name="recipient"/>; false when the cap of the window is reached.</summary>
    public bool TryReserve(string recipient)
    {
        var settings = options.Value;
        var now = time.GetUtcNow();
        var queue = _sent.GetOrAdd(recipient.Trim(), _ => new Queue<DateTimeOffset>());
        lock (queue)
        {
            while (queue.Count > 0 && queue.Peek() <= now - settings.AutomaticMailWindow)
                queue.Dequeue();
            if (queue.Count >= settings.MaxAutomaticMailsPerRecipient)
                return false;
            queue.Enqueue(now);
            return true;
        }
    }
}
