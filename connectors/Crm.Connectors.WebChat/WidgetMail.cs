using System.Net.Mail;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crm.Connectors.WebChat;

/// <summary>
/// Mail to a visitor (a verification code, a transcript) through the widget's email channel account
/// (<see cref="WebChatSettings.EmailChannel"/>), on the outbound contract: the email connector's
/// <see cref="IOutboundSender"/> sends it with the account's SMTP settings. These mails are not part of a ticket, so
/// they do not go through the outbox: the visitor waits for the answer and is told at once when it failed.
/// </summary>
public sealed class WidgetMail(IChannelAccounts accounts, IServiceProvider services, TimeProvider time, ILogger<WidgetMail> logger)
{
    /// <summary>The widget's email account when it is set, exists, is of kind email and is enabled; else null.</summary>
    public string? AccountOf(WebChatSettings settings) =>
        settings.EmailChannel is { } id && accounts.Find(id) is { Kind: ChannelKind.Email, Enabled: true } ? id : null;

    public async Task<OutboundResult> SendAsync(string account, string email, string subject, string text, CancellationToken cancellationToken)
    {
        // Resolved per send: the senders include this channel's own, which depends on this class.
        var sender = services.GetServices<IOutboundSender>().FirstOrDefault(s => s.Channel == ChannelKind.Email);
        if (sender is null)
            return OutboundResult.Fail("No email connector is registered on this node.");
        var id = Guid.CreateVersion7(time.GetUtcNow());
        var result = await sender.SendAsync(new OutboundDelivery
        {
            MessageId = id,
            TicketNumber = 0,
            ChannelAccountId = account,
            // A thread of its own: no earlier mail is referenced.
            ThreadKey = "webchat-mail:" + id.ToString("N"),
            Recipient = "email:" + email,
            Author = "webchat",
            Subject = subject,
            Text = text,
            CreatedAt = time.GetUtcNow(),
            Attempt = 1,
        }, cancellationToken);
        if (!result.Success)
            logger.LogWarning("Mail to a web chat visitor through {Account} failed: {Error}", account, result.Error);
        return result;
    }

    /// <summary>"Ann@Example.COM " → "ann@example.com"; null when it is not a plain address (no name, no list, at most 254 characters).</summary>
    public static string? NormalizeEmail(string? email)
    {
        email = email?.Trim();
        if (string.IsNullOrEmpty(email) || email.Length > 254 || email.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c is '<' or '>' or ',' or ';' or '"')
            || !MailAddress.TryCreate(email, out var parsed) || parsed.Address != email || parsed.Host.IndexOf('.', StringComparison.Ordinal) < 1)
            return null;
        return email.ToLowerInvariant();
    }
}
