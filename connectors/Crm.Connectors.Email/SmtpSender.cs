using System.Net.Sockets;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>
/// Sends agent replies through the account's SMTP server: From and Reply-To of the account, our Message-ID made from
/// the outbound message id (so a resend after a crash carries the same id, and replies and bounces map back), In-Reply-To
/// and References of the thread, the subject with the ticket tag, HTML with a text alternative, the delivery's files as
/// MIME attachments and its Cc addresses (chosen by the agent, as Zammad's reply/reply-all: never added on our own). A 5xx answer is a
/// permanent refusal; 4xx, connection and authentication failures are retried by the outbox.
/// </summary>
internal sealed class SmtpSender(IChannelAccounts accounts, IConversationLookup conversations, IOptions<EmailChannelOptions> options) : IOutboundSender
{
    /// <summary>Most message ids named in References; the oldest (the thread's root) is always kept.</summary>
    private const int MaxReferences = 20;

    public ChannelKind Channel => ChannelKind.Email;

    /// <summary>A second send mails (or messages) the customer twice: see <see cref="IOutboundSender.ResendDuplicates"/>.</summary>
    public bool ResendDuplicates => true;

    public async Task<OutboundResult> SendAsync(OutboundDelivery delivery, CancellationToken cancellationToken = default)
    {
        var account = accounts.Find(delivery.ChannelAccountId);
        if (account?.SettingsAs<EmailChannelSettings>() is not { Smtp: { } smtp } settings)
            return OutboundResult.Retry($"Channel '{delivery.ChannelAccountId}' is not available on this node (unknown, or its settings could not be read).");
        if (!delivery.Recipient.StartsWith("email:", StringComparison.Ordinal) || !MailboxAddress.TryParse(delivery.Recipient[6..], out var recipient))
            return OutboundResult.Fail($"The conversation's customer '{delivery.Recipient}' has no email address.");

        var cc = new List<MailboxAddress>();
        foreach (var copy in delivery.Cc)
        {
            if (!MailboxAddress.TryParse(copy, out var address) || !MimeMessageMapper.IsAddress(address.Address))
                return OutboundResult.Fail($"The Cc address '{copy}' is not an email address.");
            if (!string.Equals(address.Address, recipient.Address, StringComparison.OrdinalIgnoreCase) && !string.Equals(address.Address, settings.Address, StringComparison.OrdinalIgnoreCase)
                && !cc.Any(c => string.Equals(c.Address, address.Address, StringComparison.OrdinalIgnoreCase)))
                cc.Add(address);
        }

        var history = await conversations.HistoryAsync(delivery.ChannelAccountId, delivery.ThreadKey, cancellationToken: cancellationToken);
        var message = Compose(delivery, settings, recipient, history, cc);
        var data = new DataStage();
        using var client = new SmtpClient(data) { Timeout = (int)options.Value.ServerTimeout.TotalMilliseconds };
        try
        {
            await ConnectAsync(client, smtp, cancellationToken);
            // A server that states its size limit (SIZE) is asked nothing it would refuse: the agent learns why (review ER4).
            var size = Measure(message);
            if (client.Capabilities.HasFlag(SmtpCapabilities.Size) && client.MaxSize > 0 && size > client.MaxSize)
                return TooLarge($"the composed mail is {size} bytes, the server's SIZE limit is {client.MaxSize}", size, client.MaxSize);
            await client.SendAsync(message, cancellationToken);
        }
        catch (SmtpCommandException ex) when (ex.StatusCode == SmtpStatusCode.ExceededStorageAllocation)
        {
            return TooLarge($"SMTP 552 {ex.Message}", Measure(message), client.MaxSize);
        }
        catch (SmtpCommandException ex)
        {
            var words = $"SMTP {(int)ex.StatusCode} {ex.Message}{(ex.Mailbox is null ? "" : $" ({ex.Mailbox.Address})")}";
            return (int)ex.StatusCode >= 500 ? OutboundResult.Fail(words) : OutboundResult.Retry(words);
        }
        catch (Exception ex) when (data.EndWritten && ex is not OutOfMemoryException)
        {
            // The whole mail and its end-of-data dot were written to the connection, then the answer to it was lost (our send timeout, the server's slow scan, a cut
            // connection): it may well be delivered, and a retry would mail the customer and every Cc again (review ER3).
            return OutboundResult.Unknown($"SMTP: no answer after the whole mail was sent ({ex.GetType().Name}: {ex.Message})",
                "the mail server received the whole mail but did not confirm it in time, so it may have been delivered; check with the customer before resending");
        }
        catch (AuthenticationException ex)
        {
            // Often a changed password: retried, so replies go out once an admin fixes it.
            return OutboundResult.Retry($"SMTP login refused: {ex.Message}");
        }
        catch (Exception ex) when (ex is SmtpProtocolException or SocketException or IOException or SslHandshakeException or TimeoutException or ServiceNotConnectedException
            or ServiceNotAuthenticatedException or NotSupportedException)
        {
            return OutboundResult.Retry($"SMTP {ex.GetType().Name}: {ex.Message}");
        }
        // The server took the mail: whatever happens to QUIT now, it is sent (a retry would mail the customer twice).
        try
        {
            using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.DisconnectAsync(quit: true, quick.Token);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A server that drops the connection or is slow to answer QUIT after 250 for DATA.
        }
        return OutboundResult.Sent(message.MessageId);
    }

    private static OutboundResult TooLarge(string error, long size, uint limit) => OutboundResult.Fail(error) with
    {
        AgentReason = $"the mail with its files is {size / 1_000_000.0:0.#} MB once encoded and the mail server takes at most {limit / 1_000_000.0:0.#} MB; send fewer or smaller files (or links)",
    };

    /// <summary>The mail's size as it goes out (encoded), what the server compares with its SIZE limit.</summary>
    private static long Measure(MimeMessage message)
    {
        using var measure = new MimeKit.IO.MeasuringStream();
        message.WriteTo(FormatOptions.Default, measure);
        return measure.Length;
    }

    /// <summary>
    /// Tells from the protocol stage, not a byte count, when the mail's end of data ("\r\n.\r\n" after DATA) was
    /// written to the connection (review EM2): MailKit hands a protocol logger the client's bytes only after the socket
    /// took them, and dot-stuffing means that sequence appears nowhere else in the payload. Before it, a failure means the
    /// server cannot have accepted the mail (retried); after it, a lost answer is "unknown". Progress counts were wrong
    /// both ways: reported before the buffered tail and the dot were flushed, and counted with the stuffed dots against
    /// an unstuffed total. Our mails never need BDAT (no binary parts), so DATA is always used.
    /// </summary>
    internal sealed class DataStage : IProtocolLogger
    {
        private const ulong DataCommand = 0x0A_44_41_54_41_0D_0A; // "\nDATA\r\n"
        private const ulong EndOfData = 0x0D_0A_2E_0D_0A;         // "\r\n.\r\n"
        private ulong _window;
        private int _stage; // 0 commands, 1 payload, 2 end of data written

        public bool EndWritten => Volatile.Read(ref _stage) == 2;

        public IAuthenticationSecretDetector? AuthenticationSecretDetector { get; set; }

        public void LogClient(byte[] buffer, int offset, int count)
        {
            for (var i = offset; i < offset + count && _stage < 2; i++)
            {
                _window = (_window << 8) | buffer[i];
                if (_stage == 0 && (_window & 0xFF_FFFF_FFFF_FFFF) == DataCommand)
                    (_stage, _window) = (1, 0);
                else if (_stage == 1 && (_window & 0xFF_FFFF_FFFF) == EndOfData)
                    Volatile.Write(ref _stage, 2);
            }
        }

        public void LogConnect(Uri uri)
        {
        }

        public void LogServer(byte[] buffer, int offset, int count)
        {
        }

        public void Dispose()
        {
        }
    }

    /// <summary>Connects (with the account's certificate trust) and logs in when the account has a user.</summary>
    internal static async Task ConnectAsync(SmtpClient client, SmtpSettings smtp, CancellationToken cancellationToken)
    {
        client.ServerCertificateValidationCallback = CertificateTrust.Validator(smtp.TrustedCertificate);
        await client.ConnectAsync(smtp.Host!, smtp.Port, ImapMailboxReader.SecurityOf(smtp.Security), cancellationToken);
        if (!string.IsNullOrEmpty(smtp.User))
            await client.AuthenticateAsync(smtp.User, smtp.Password ?? "", cancellationToken);
    }

    internal static MimeMessage Compose(OutboundDelivery delivery, EmailChannelSettings settings, MailboxAddress recipient, ThreadHistory history, IReadOnlyList<MailboxAddress>? cc = null)
    {
        var from = new MailboxAddress(settings.DisplayName ?? "", settings.Address!);
        var message = new MimeMessage
        {
            MessageId = EmailIds.Outbound(delivery.MessageId, settings.Domain),
            Date = delivery.CreatedAt,
            Subject = delivery.Subject ?? SubjectOf(history.TicketSubject, delivery.TicketNumber),
        };
        message.From.Add(from);
        message.ReplyTo.Add(from);
        message.To.Add(recipient);
        foreach (var copy in cc ?? [])
            message.Cc.Add(copy);

        var earlier = history.Messages
            .Where(m => m.OutboundMessageId != delivery.MessageId)
            .Select(m => (m.InboundExternalId is { } inbound ? EmailIds.MessageIdOf(inbound) : null) ?? (m.OutboundMessageId is { } id ? EmailIds.Outbound(id, settings.Domain) : null))
            .OfType<string>()
            .Where(id => !id.StartsWith("sha256:", StringComparison.Ordinal) && !id.StartsWith("raw-sha256:", StringComparison.Ordinal) && EmailIds.IsSendable(id))
            .ToList();
        if (earlier.Count > 0)
        {
            message.InReplyTo = earlier[^1];
            var references = earlier.Count <= MaxReferences ? earlier : [earlier[0], .. earlier.TakeLast(MaxReferences - 1)];
            foreach (var id in references)
                message.References.Add(id);
        }
        message.Headers.Add("X-Crm-Ticket", delivery.TicketNumber.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var body = new BodyBuilder { TextBody = delivery.Text ?? "" };
        if (!string.IsNullOrEmpty(delivery.Html))
            body.HtmlBody = delivery.Html;
        foreach (var file in delivery.Attachments)
        {
            // A type the agent's browser sent that MimeKit cannot read goes as octet-stream rather than failing the reply.
            if (!ContentType.TryParse(file.ContentType, out var type))
                type = new ContentType("application", "octet-stream");
            body.Attachments.Add(string.IsNullOrWhiteSpace(file.FileName) ? "attachment" : file.FileName, file.Content, type);
        }
        message.Body = body.ToMessageBody();
        return message;
    }

    /// <summary>"Re: {subject} [#N]": the tag lets a reply find its ticket even when a mail client drops the references.</summary>
    internal static string SubjectOf(string? ticketSubject, long ticketNumber)
    {
        var tag = $"[#{ticketNumber}]";
        var subject = string.IsNullOrWhiteSpace(ticketSubject) ? "Your request" : ticketSubject.Trim();
        if (!subject.Contains(tag, StringComparison.Ordinal))
            subject += " " + tag;
        return subject.StartsWith("Re:", StringComparison.OrdinalIgnoreCase) ? subject : "Re: " + subject;
    }
}
