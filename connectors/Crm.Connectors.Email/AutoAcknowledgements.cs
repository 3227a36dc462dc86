using System.Text.RegularExpressions;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// The automatic acknowledgement of a new ticket: claimed in the store while the mail that opened the ticket is
/// handled (before the mailbox acknowledges it, so a crash leaves the claim or a redelivery that claims again), then
/// sent by <see cref="AutomaticMailSender"/>. Once per ticket; capped per recipient; never to machine-written mail.
/// </summary>
internal sealed partial class AutoAcknowledgements(IAutomaticMailStore store, AutomaticMailSignal signal, IOptions<EmailChannelOptions> options, TimeProvider time)
{
    public const string Kind = "acknowledgement";

    /// <summary>Queues the acknowledgement of the ticket <paramref name="stored"/> opened, unless it had one or its recipient
    /// (or the account) is over the cap. The customer's subject and name are kept for the template only when the
    /// receiving server authenticated the sender; a mail whose From holds no usable address (the sender was taken from
    /// Sender/Reply-To) is not acknowledged at all.</summary>
    public async Task<AutomaticMailClaim?> ClaimAsync(ChannelAccount account, ParsedMail mail, SenderIdentity sender, IngestResult stored, AutoAcknowledgementSettings settings, EmailChannelSettings channel, CancellationToken cancellationToken)
    {
        if (!mail.Message.From.Mailboxes.Any(m => string.Equals(m.Address, sender.Value, StringComparison.OrdinalIgnoreCase)))
            return null;
        var authServId = string.IsNullOrWhiteSpace(settings.TrustedAuthServId) ? channel.Forwarding?.TrustedAuthServId : settings.TrustedAuthServId;
        var echo = SenderAuthentication.IsAuthenticated(mail.Message, authServId, sender.Value);
        var language = settings.Language != "auto" ? settings.Language : WrittenInChinese(mail.Subject) || WrittenInChinese(mail.Text) ? "zh" : "en";
        var claim = await store.ClaimAsync(new AutomaticMail(Guid.CreateVersion7(time.GetUtcNow()), account.Id, Kind, stored.TicketNumber, sender.Value, echo ? sender.DisplayName : null,
            EmailIds.Normalize(mail.Message.MessageId) is { } id && !id.StartsWith("sha256:", StringComparison.Ordinal) && EmailIds.IsSendable(id) ? id : null,
            echo ? mail.Subject : null, language, time.GetUtcNow()), options.Value.MaxAutomaticMailsPerRecipient, options.Value.MaxAutomaticMailsPerAccount, options.Value.AutomaticMailWindow, cancellationToken);
        if (claim == AutomaticMailClaim.Claimed)
            signal.Notify();
        return claim;
    }

    /// <summary>The acknowledgement as it is sent: From the account, In-Reply-To the customer's mail, the ticket tag in
    /// the subject, and marked automatic (RFC 3834 <c>Auto-Submitted: auto-replied</c>, and the headers other
    /// helpdesks and Exchange look for), so a well-behaved auto-responder does not answer it.</summary>
    public static MimeMessage Compose(AutomaticMail mail, EmailChannelSettings settings, AutoAcknowledgementSettings template)
    {
        // A claim without the customer's subject (an unauthenticated sender) gets the built-in subject without it.
        var (defaultSubject, defaultBody, anonymous) = mail.Language == "zh"
            ? (string.IsNullOrWhiteSpace(mail.Subject) ? ChineseSubjectOnly : ChineseSubject, ChineseBody, "客户")
            : (string.IsNullOrWhiteSpace(mail.Subject) ? EnglishSubjectOnly : EnglishSubject, EnglishBody, "there");
        var subject = OneLine(mail.Subject);
        var name = OneLine(mail.RecipientName);
        string Render(string text) => text
            .Replace("{{ticket}}", mail.TicketNumber.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{{subject}}", subject, StringComparison.Ordinal)
            .Replace("{{name}}", name.Length > 0 ? name : anonymous, StringComparison.Ordinal);

        var from = new MailboxAddress(settings.DisplayName ?? "", settings.Address!);
        var message = new MimeMessage
        {
            MessageId = $"crm.ack.{mail.Id:N}@{settings.Domain}",
            Date = mail.At,
            Subject = Render(template.Subject ?? defaultSubject),
        };
        message.From.Add(from);
        message.ReplyTo.Add(from);
        message.To.Add(new MailboxAddress(name, mail.Recipient));
        if (mail.InReplyTo is { } inReplyTo)
        {
            message.InReplyTo = inReplyTo;
            message.References.Add(inReplyTo);
        }
        message.Headers.Add("Auto-Submitted", "auto-replied");
        message.Headers.Add("X-Auto-Response-Suppress", "All");
        message.Headers.Add("Precedence", "auto_reply");
        message.Headers.Add("X-Crm-Ticket", mail.TicketNumber.ToString(System.Globalization.CultureInfo.InvariantCulture));
        message.Body = new TextPart("plain") { Text = Render(template.Body ?? defaultBody) };
        return message;
    }

    private const string EnglishSubject = "We received your request [#{{ticket}}]: {{subject}}";
    private const string EnglishSubjectOnly = "We received your request [#{{ticket}}]";
    private const string ChineseSubjectOnly = "我们已收到您的请求 [#{{ticket}}]";
    private const string EnglishBody = """
        Hello {{name}},

        thank you for your message. We have received it as ticket #{{ticket}} and will answer as soon as we can.
        To add anything, reply to this email and keep [#{{ticket}}] in the subject.

        This is an automatic message.
        """;
    private const string ChineseSubject = "我们已收到您的请求 [#{{ticket}}]：{{subject}}";
    private const string ChineseBody = """
        尊敬的{{name}}，您好：

        感谢您的来信。我们已收到您的请求，工单编号为 #{{ticket}}，我们会尽快回复您。
        如需补充信息，请直接回复本邮件，并保留主题中的 [#{{ticket}}]。

        此邮件为自动回复，请勿直接回复无关内容。
        """;

    private static string OneLine(string? text)
    {
        var line = ControlCharacters().Replace(text ?? "", " ").Trim();
        return line.Length <= 200 ? line : line[..200] + "…";
    }

    private static bool WrittenInChinese(string? text) => text is not null && Han().IsMatch(text.Length <= 2000 ? text : text[..2000]);

    [GeneratedRegex(@"\p{IsCJKUnifiedIdeographs}", RegexOptions.CultureInvariant)]
    private static partial Regex Han();

    [GeneratedRegex(@"[\p{Cc}\p{Zl}\p{Zp}]+", RegexOptions.CultureInvariant)]
    private static partial Regex ControlCharacters();
}

/// <summary>Wakes the <see cref="AutomaticMailSender"/> when a mail was queued, so it leaves at once.</summary>
internal sealed class AutomaticMailSignal
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Notify()
    {
        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _signal.WaitAsync(timeout, cancellationToken);
}
