using System.Net.Sockets;
using Crm.Connectors.Abstractions;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Email;

/// <summary>
/// Sends the queued automatic mail (<see cref="IAutomaticMailStore"/>) through each account's SMTP server, with retry
/// and backoff like the outbox: a 5xx answer fails it for good, anything else is tried again, at most
/// <see cref="MaxAttempts"/> times. A mail is marked in flight (durably) before its send starts, so a crash during the
/// send or between the server's 250 and the mark never sends it again: the next sender finds the mark and settles the
/// mail as not confirmed (<c>Unconfirmed</c>, review EN2/EN8). One node of the
/// cluster sends, under the connector lease <see cref="LeaseKey"/>: every node sees the same queue, and two senders
/// would each send a due row before either marked it.
/// </summary>
internal sealed class AutomaticMailSender(
    IAutomaticMailStore store,
    IChannelAccounts accounts,
    AutomaticMailSignal signal,
    ConnectorLeases leases,
    IOptions<EmailChannelOptions> options,
    TimeProvider time,
    ILogger<AutomaticMailSender> logger) : BackgroundService
{
    public const int MaxAttempts = 6;

    /// <summary>The lease of the cluster's one automatic-mail sender (prefixed like the readers' "email-reader:{id}").</summary>
    public const string LeaseKey = "email-automatic-mail";

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => leases.RunWhileHeldAsync(LeaseKey, SendWhileHeldAsync, stoppingToken);

    private async Task SendWhileHeldAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await SendDueAsync(stoppingToken) > 0)
                {
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Sending automatic mail failed; trying again in {Interval}", options.Value.PollInterval);
            }
            try
            {
                await signal.WaitAsync(options.Value.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Sends what is due now; returns how many were handled.</summary>
    internal async Task<int> SendDueAsync(CancellationToken cancellationToken)
    {
        var due = await store.DueAsync(time.GetUtcNow(), 20, cancellationToken);
        foreach (var mail in due)
        {
            string? error;
            bool retry;
            if (mail.InFlight)
            {
                // A send of it started and recorded no outcome: the node stopped or crashed during (or right after) the
                // data, so the customer may have it. Never sent again (review EN2), as for an agent's reply.
                error = UnconfirmedPrefix + "the sender stopped while sending it and recorded no answer, so it may have been delivered";
                logger.LogWarning("Automatic mail {Id} to {Recipient} (ticket {Ticket}): {Error}", mail.Id, mail.Recipient, mail.TicketNumber, error);
                await store.CompleteAsync(mail.Id, error, null, time.GetUtcNow(), CancellationToken.None, unconfirmed: true);
                continue;
            }
            try
            {
                (error, retry) = await SendAsync(mail, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Whatever one row throws (a value MimeKit refuses, an exception MailKit adds later) is that row's
                // failure, retried with backoff and then given up: it never stops the rows behind it.
                (error, retry) = ($"{ex.GetType().Name}: {ex.Message}", true);
            }
            var retryAt = retry && mail.Attempts + 1 < MaxAttempts ? time.GetUtcNow() + options.Value.ReconnectDelay(mail.Attempts + 1) : (DateTimeOffset?)null;
            if (error is not null)
                logger.LogWarning("Automatic mail {Id} to {Recipient} (ticket {Ticket}): {Error}{Retry}", mail.Id, mail.Recipient, mail.TicketNumber, error, retryAt is null ? "; given up" : "; retrying");
            // Recorded even when the lease is lost or the node stops meanwhile (a short, bounded write): a completion
            // dropped with the token leaves the row due, and the next holder mails the customer again (review LD6).
            await store.CompleteAsync(mail.Id, error, retryAt, time.GetUtcNow(), CancellationToken.None,
                unconfirmed: error?.StartsWith(UnconfirmedPrefix, StringComparison.Ordinal) == true);
        }
        return due.Count;
    }

    /// <summary>How the error of an automatic mail whose outcome is unknown begins (the "may have been delivered" state).</summary>
    internal const string UnconfirmedPrefix = "Not confirmed: ";

    private async Task<(string? Error, bool Retry)> SendAsync(AutomaticMail mail, CancellationToken cancellationToken)
    {
        var account = accounts.Find(mail.ChannelAccountId);
        if (account is not { Enabled: true } || account.SettingsAs<EmailChannelSettings>() is not { Smtp: { } smtp } settings)
            return ($"Channel '{mail.ChannelAccountId}' is disabled or gone: not sent.", false);
        if (settings.AutoAcknowledgement is not { Enabled: true } template)
            return ("The account's acknowledgement was switched off before it was sent: not sent.", false);
        var data = new SmtpSender.DataStage();
        var marked = false;
        using var client = new SmtpClient(data) { Timeout = (int)options.Value.ServerTimeout.TotalMilliseconds };
        try
        {
            var message = AutoAcknowledgements.Compose(mail, settings, template);
            await SmtpSender.ConnectAsync(client, smtp, cancellationToken);
            // Durably in flight before MAIL FROM (after the connect, whose failures are the common ones and send
            // nothing): a kill from here on leaves the mark, and the next sender settles it as not confirmed (EN2).
            await store.MarkInFlightAsync(mail.Id, cancellationToken);
            marked = true;
            await client.SendAsync(message, cancellationToken);
        }
        catch (SmtpCommandException ex)
        {
            return ($"SMTP {(int)ex.StatusCode} {ex.Message}", (int)ex.StatusCode < 500);
        }
        catch (OperationCanceledException) when (marked && cancellationToken.IsCancellationRequested && !data.EndWritten)
        {
            // Stopped (or the lease lost) before the final dot: the server discards an unfinished mail, so it is due
            // again (the in-flight mark cleared) rather than left for the next sender to settle as not confirmed.
            return ("Stopped before the whole mail was sent: sent again later.", true);
        }
        catch (Exception ex) when (data.EndWritten && ex is not OutOfMemoryException)
        {
            // The whole mail and its end-of-data dot reached the connection, then the answer was lost (a cut connection,
            // a timeout, the node stopping): it may have been delivered. Not retried, as for an agent's reply: a second
            // copy to the customer is worse than none, and the row says so.
            return (UnconfirmedPrefix + $"the mail server received the whole mail but did not confirm it, so it may have been delivered ({ex.GetType().Name}: {ex.Message})", false);
        }
        catch (Exception ex) when (ex is AuthenticationException or SmtpProtocolException or SocketException or IOException or SslHandshakeException or TimeoutException
            or ServiceNotConnectedException or ServiceNotAuthenticatedException or NotSupportedException)
        {
            return ($"SMTP {ex.GetType().Name}: {ex.Message}", true);
        }
        try
        {
            // At most 2 s, and none once the lease is lost or the node stops: the completion must be written first.
            using var quick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            quick.CancelAfter(TimeSpan.FromSeconds(2));
            await client.DisconnectAsync(quit: true, quick.Token);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Sent already (250 for DATA).
        }
        return (null, false);
    }
}
