using System.Net.Sockets;
using Crm.Connectors.Abstractions;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Search;
using MailKit.Security;
using Microsoft.Extensions.Logging;

namespace Crm.Connectors.Email;

/// <summary>
/// Reads one mailbox account: connect, log in, open the folder, hand off every mail above the stored cursor in
/// batches, acknowledge (\Seen or move) only the mails whose hand-off returned, store the cursor, then wait with IDLE
/// (or poll when the server has no IDLE) and go round again. Errors are reported to the account's health in the
/// server's words and the loop reconnects with backoff. One <see cref="ImapClient"/> per reader: it is not thread-safe.
/// </summary>
/// <remarks>
/// Nothing is lost and nothing is duplicated: the cursor moves only after the mails below it were stored and
/// acknowledged, so a crash or a dropped connection makes the server deliver them again, and the hand-off answers a
/// redelivery (same Message-ID, or the same bytes when there is none) with the stored message. A changed UIDVALIDITY
/// starts the folder again from its first UID, with the same dedupe.
/// </remarks>
internal sealed class ImapMailboxReader(
    string accountId,
    IChannelAccounts accounts,
    EmailIngest ingest,
    IMailboxStateStore state,
    IChannelHealth health,
    EmailChannelOptions options,
    ILogger logger)
{
    public string AccountId { get; } = accountId;

    /// <summary>Mails handed off by this reader (stored, duplicate or quarantined), for tests and the benchmark.</summary>
    public long Processed => Interlocked.Read(ref _processed);

    private long _processed;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var account = accounts.Find(AccountId);
            if (account?.SettingsAs<EmailChannelSettings>() is not { Imap: { } imap } settings)
                return;
            using var client = new ImapClient { Timeout = (int)options.ServerTimeout.TotalMilliseconds };
            try
            {
                await ConnectAsync(client, imap, cancellationToken);
                var folder = await client.GetFolderAsync(imap.Folder, cancellationToken);
                await folder.OpenAsync(FolderAccess.ReadWrite, cancellationToken);
                var moveTo = imap.MoveTo is { } target ? await FolderForMoveAsync(client, target, cancellationToken) : null;
                await ReportHealthAsync(null, cancellationToken);
                failures = 0;
                // EXISTS can arrive with the answer to any command (a SEARCH, a FETCH), not only during IDLE: it is
                // noted here, so a mail that arrives while a batch is read is never left waiting for the next one.
                var changed = new MailboxChangeSignal();
                folder.CountChanged += changed.OnCountChanged;
                try
                {
                    while (!cancellationToken.IsCancellationRequested)
                    {
                        changed.Reset();
                        await ReadNewAsync(account, folder, moveTo, cancellationToken);
                        await ReportHealthAsync(null, cancellationToken);
                        if (!changed.IsSet)
                            await WaitForMailAsync(client, imap.Idle, changed, cancellationToken);
                    }
                }
                finally
                {
                    folder.CountChanged -= changed.OnCountChanged;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                failures++;
                var delay = options.ReconnectDelay(failures);
                var words = ServerWords(ex);
                logger.LogWarning(IsServerError(ex) ? null : ex, "Mailbox {Channel}: {Error}; reconnecting in {Delay}", AccountId, words, delay);
                await ReportHealthAsync(words, CancellationToken.None);
                try
                {
                    await Task.Delay(delay, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            finally
            {
                if (client.IsConnected)
                {
                    try
                    {
                        using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                        await client.DisconnectAsync(quit: true, quick.Token);
                    }
                    catch (Exception ex) when (ex is not OutOfMemoryException)
                    {
                        // Closing a broken connection may fail; the socket is disposed with the client.
                    }
                }
            }
        }
    }

    /// <summary>Best effort: health is written to the store, and a store outage must not end the reader (it would
    /// never read this mailbox again); the reader goes on to its backoff and reports again later.</summary>
    private async Task ReportHealthAsync(string? error, CancellationToken cancellationToken)
    {
        try
        {
            if (error is null)
                await health.ReportSuccessAsync(AccountId, cancellationToken);
            else
                await health.ReportErrorAsync(AccountId, error, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Mailbox {Channel}: its health could not be recorded", AccountId);
        }
    }

    private static async Task ConnectAsync(ImapClient client, ImapSettings imap, CancellationToken cancellationToken)
    {
        client.ServerCertificateValidationCallback = CertificateTrust.Validator(imap.TrustedCertificate);
        await client.ConnectAsync(imap.Host!, imap.Port, SecurityOf(imap.Security), cancellationToken);
        await client.AuthenticateAsync(imap.User!, imap.Password ?? "", cancellationToken);
    }

    internal static SecureSocketOptions SecurityOf(MailSecurity security) => security switch
    {
        MailSecurity.Ssl => SecureSocketOptions.SslOnConnect,
        MailSecurity.Starttls => SecureSocketOptions.StartTls,
        _ => SecureSocketOptions.None,
    };

    private static async Task<IMailFolder> FolderForMoveAsync(ImapClient client, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.GetFolderAsync(name, cancellationToken);
        }
        catch (FolderNotFoundException)
        {
            var root = client.GetFolder(client.PersonalNamespaces[0]);
            return await root.CreateAsync(name, isMessageFolder: true, cancellationToken)
                ?? throw new FolderNotFoundException(name);
        }
    }

    /// <summary>
    /// Every mail above the cursor, batch by batch: sizes first (RFC822.SIZE), then the bodies of one batch (bounded
    /// by count and bytes), hand off (concurrently by lane), acknowledge, move the cursor. A mail over the size limit is
    /// never downloaded: only its header is, and it is handed off flagged (the full source stays on the server).
    /// </summary>
    private async Task ReadNewAsync(ChannelAccount account, IMailFolder folder, IMailFolder? moveTo, CancellationToken cancellationToken)
    {
        var imap = account.SettingsAs<EmailChannelSettings>()!.Imap!;
        var server = ServerIdentity(imap);
        var cursor = await state.GetCursorAsync(AccountId, imap.Folder, cancellationToken);
        if (cursor is not null && cursor.Server is not null && cursor.Server != server)
        {
            // UIDs of another mailbox (the account now points at another host or login): mailboxes created in the same
            // second share a UIDVALIDITY on Dovecot, so the old LastUid would silently skip this one's mail.
            logger.LogWarning("Mailbox {Channel}: the account now reads another server mailbox; reading {Folder} from its first UID (stored mails are recognised)", AccountId, imap.Folder);
            cursor = null;
        }
        else if (cursor is not null && cursor.UidValidity != folder.UidValidity)
        {
            logger.LogWarning("Mailbox {Channel}: UIDVALIDITY of {Folder} changed from {Old} to {New}; reading the folder again (stored mails are recognised)",
                AccountId, imap.Folder, cursor.UidValidity, folder.UidValidity);
            cursor = null;
        }
        var last = cursor?.LastUid ?? 0;
        if (folder.Count == 0)
            return;
        var range = new UniqueIdRange(new UniqueId(folder.UidValidity, last + 1), UniqueId.MaxValue);
        // "n:*" always matches the newest mail even when its UID is below n; keep only what is really new.
        var uids = (await folder.SearchAsync(SearchQuery.Uids(range), cancellationToken)).Where(u => u.Id > last).OrderBy(u => u.Id).ToList();
        if (uids.Count == 0)
            return;
        // Sizes before bodies: what a batch holds in memory is known before it is fetched.
        var sizes = new Dictionary<uint, long>();
        foreach (var summary in await folder.FetchAsync(uids, MessageSummaryItems.UniqueId | MessageSummaryItems.Size, cancellationToken))
            sizes[summary.UniqueId.Id] = summary.Size ?? 0;
        foreach (var batch in MailBatches.Split(uids.Select(u => u.Id).ToList(), sizes, options.BatchSize, options.MaxBatchBytes, options.MaxMessageBytes))
        {
            var raws = new SortedDictionary<uint, byte[]>();
            var full = batch.Where(uid => sizes.TryGetValue(uid, out var size) && size <= options.MaxMessageBytes).Select(uid => new UniqueId(folder.UidValidity, uid)).ToList();
            if (full.Count > 0)
                await ((ImapFolder)folder).GetStreamsAsync(full, async (_, _, uid, stream, ct) =>
                {
                    using var buffer = new MemoryStream(sizes.TryGetValue(uid.Id, out var size) ? (int)Math.Min(size, options.MaxMessageBytes) : 0);
                    await stream.CopyToAsync(buffer, ct);
                    // Exactly the announced size: the buffer itself, no second copy.
                    raws[uid.Id] = buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
                }, cancellationToken);

            // Lanes of possibly related mails run side by side; a lane keeps UID order. A failure ends the batch: the
            // mails already stored are recognised when the server delivers the batch again.
            var lanes = MailLanes.Split([.. raws.Select(r => (r.Key, r.Value))]);
            await Parallel.ForEachAsync(lanes, new ParallelOptions { MaxDegreeOfParallelism = options.HandOffParallelism, CancellationToken = cancellationToken }, async (lane, ct) =>
            {
                foreach (var (uid, raw) in lane)
                {
                    await ingest.ProcessAsync(account, imap.Folder, folder.UidValidity, uid, raw, ct);
                    Interlocked.Increment(ref _processed);
                }
            });
            // Over the limit: the header only (bounded too), handed off with a note; the source stays on the server.
            var handled = raws.Keys.ToList();
            foreach (var uid in batch.Where(uid => sizes.TryGetValue(uid, out var size) && size > options.MaxMessageBytes))
            {
                var header = await HeaderOfAsync(folder, new UniqueId(folder.UidValidity, uid), cancellationToken);
                if (header is null)
                    continue;
                await ingest.ProcessOversizeAsync(account, imap.Folder, folder.UidValidity, uid, header, sizes[uid], cancellationToken);
                Interlocked.Increment(ref _processed);
                handled.Add(uid);
            }
            // Only now, with every mail of the batch stored (or quarantined), may the server forget them.
            if (handled.Count > 0)
            {
                var ids = handled.Order().Select(uid => new UniqueId(folder.UidValidity, uid)).ToList();
                if (moveTo is not null)
                    await folder.MoveToAsync(ids, moveTo, cancellationToken);
                else
                    await folder.StoreAsync(ids, new StoreFlagsRequest(StoreAction.Add, MessageFlags.Seen) { Silent = true }, cancellationToken);
            }
            // A UID that vanished between SEARCH and FETCH (expunged by someone else) is passed too.
            await state.SaveCursorAsync(AccountId, imap.Folder, new MailboxCursor(folder.UidValidity, batch[^1], server), cancellationToken);
        }
    }

    /// <summary>The header block of one mail, at most <see cref="EmailChannelOptions.MaxHeaderBytes"/>; null when the mail is gone.</summary>
    private async Task<byte[]?> HeaderOfAsync(IMailFolder folder, UniqueId uid, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await folder.GetStreamAsync(uid, "HEADER", cancellationToken);
            var buffer = new byte[(int)Math.Min(stream.CanSeek ? stream.Length : options.MaxHeaderBytes, options.MaxHeaderBytes)];
            var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
            return read == buffer.Length ? buffer : buffer[..read];
        }
        catch (MessageNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Which server mailbox a cursor's UIDs belong to: a hash of host, port and login (never the password).</summary>
    internal static string ServerIdentity(ImapSettings imap) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
        System.Text.Encoding.UTF8.GetBytes($"{imap.Host?.Trim().ToLowerInvariant()}:{imap.Port}/{imap.User?.Trim()}")))[..32];

    /// <summary>IDLE until the folder changes (or the refresh interval passes); without IDLE (the server has none, or the
    /// account turned it off), one poll interval.</summary>
    private async Task WaitForMailAsync(ImapClient client, bool idle, MailboxChangeSignal changed, CancellationToken cancellationToken)
    {
        if (!idle || !client.Capabilities.HasFlag(ImapCapabilities.Idle))
        {
            await Task.Delay(options.PollInterval, cancellationToken);
            await client.NoOpAsync(cancellationToken);
            return;
        }
        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        done.CancelAfter(options.IdleRefresh);
        changed.EndIdle = done;
        try
        {
            // A change noted between the last read and here ends the IDLE at once.
            if (changed.IsSet)
                return;
            await client.IdleAsync(done.Token, cancellationToken);
        }
        finally
        {
            changed.EndIdle = null;
        }
    }

    /// <summary>Whether the folder changed since the last read; ends a running IDLE when it does. Raised and read on
    /// the reader's own flow (MailKit raises events while it processes responses), so no lock is needed.</summary>
    private sealed class MailboxChangeSignal
    {
        public bool IsSet { get; private set; }

        public CancellationTokenSource? EndIdle { get; set; }

        public void Reset() => IsSet = false;

        public void OnCountChanged(object? sender, EventArgs e)
        {
            IsSet = true;
            EndIdle?.Cancel();
        }
    }

    /// <summary>Errors of the server or the network, logged without a stack; anything else is ours and logged with it.</summary>
    private static bool IsServerError(Exception ex) =>
        ex is AuthenticationException or ImapCommandException or FolderNotFoundException or ImapProtocolException or SocketException or IOException or SslHandshakeException or TimeoutException;

    /// <summary>The server's own words where there are some (a NO/BAD response, an authentication refusal).</summary>
    private static string ServerWords(Exception ex) => ex switch
    {
        AuthenticationException auth => $"Login refused: {auth.Message}",
        ImapCommandException command => $"IMAP {command.Response}: {command.ResponseText}",
        FolderNotFoundException folder => $"Folder '{folder.FolderName}' does not exist on the server.",
        ImapProtocolException protocol => $"IMAP protocol error: {protocol.Message}",
        SocketException socket => $"Cannot connect: {socket.Message}",
        IOException io => $"Connection lost: {io.Message}",
        SslHandshakeException tls => $"TLS failed: {tls.Message}",
        TimeoutException timeout => $"Timeout: {timeout.Message}",
        _ => $"{ex.GetType().Name}: {ex.Message}",
    };
}
