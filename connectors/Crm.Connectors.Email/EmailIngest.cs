using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Email;

/// <summary>What became of one mail; every outcome lets the reader acknowledge it on the server.</summary>
internal abstract record MailOutcome
{
    /// <summary>Stored as a message (or it already was: <see cref="IngestResult.Duplicate"/>).</summary>
    public sealed record Stored(IngestResult Result) : MailOutcome;

    /// <summary>Not a customer message (unparseable, a bounce, our own mail, refused): kept raw in the quarantine with the reason.</summary>
    public sealed record Quarantined(string Reason) : MailOutcome;
}

/// <summary>
/// One mail from a mailbox to the core: parse (MimeKit), recognise bounces and our own mail, thread in layers, hand
/// off. Bounces mark the outbound message they answer failed and open no ticket. Whatever cannot become a message is
/// quarantined with its raw source and the reason, so nothing is lost and nothing blocks the mailbox.
/// </summary>
/// <remarks>
/// Threading, in layers: (1) In-Reply-To/References naming a message we received or sent on this account → that
/// conversation; (2) a ticket tag "[#N]" in the subject, trusted only when the sender is the customer of a
/// conversation of that ticket on this account; (3) otherwise a conversation of its own (keyed by the mail's dedupe
/// key: its Message-ID qualified by a hash of the sender), that is, a new ticket. The mail's own id is looked up first, so a redelivery resolves to the
/// conversation of its first copy and the conversation grain answers it as a duplicate.
/// </remarks>
internal sealed class EmailIngest(
    MimeMessageMapper mapper,
    IInboundHandOff handOff,
    IConversationLookup conversations,
    IChannelAccounts accounts,
    IMailboxStateStore mailboxes,
    IGrainFactory grains,
    IOptions<EmailChannelOptions> options,
    TimeProvider time,
    ILogger<EmailIngest> logger,
    AutoAcknowledgements acknowledgements,
    IAgentAddresses? agents = null)
{
    public async Task<MailOutcome> ProcessAsync(ChannelAccount account, string folder, uint uidValidity, uint uid, byte[] raw, CancellationToken cancellationToken = default)
    {
        var settings = account.SettingsAs<EmailChannelSettings>() ?? throw new InvalidOperationException($"Channel '{account.Id}' has no email settings.");
        var now = time.GetUtcNow();
        if (raw.Length > options.Value.MaxMessageBytes)
            return await HandOffOversizeAsync(account, folder, uidValidity, uid, raw, now, MimeMessageMapper.OversizeNote(raw.LongLength, options.Value.MaxMessageBytes), cancellationToken);
        var (parts, headerFields, longField, longInTotal) = MimeShape.Measure(raw, options.Value.MaxMimeParts, options.Value.MaxHeaderLines, cancellationToken, options.Value.MaxHeaderFieldBytes);
        if (longField is not null)
            return await HandOffOversizeAsync(account, folder, uidValidity, uid, raw, now, longInTotal
                ? $"[This email's address header fields (up to {longField}) are longer than {options.Value.MaxHeaderFieldBytes / 1024} KB together. It was not parsed; its raw source is kept with the message.]"
                : $"[This email has a header field ({longField}) longer than {options.Value.MaxHeaderFieldBytes / 1024} KB. It was not parsed; its raw source is kept with the message.]", cancellationToken);
        if (parts > options.Value.MaxMimeParts)
            return await HandOffOversizeAsync(account, folder, uidValidity, uid, raw, now,
                $"[This email has more than {options.Value.MaxMimeParts} MIME parts. It was not parsed; its raw source is kept with the message.]", cancellationToken);
        if (headerFields > options.Value.MaxHeaderLines)
            return await HandOffOversizeAsync(account, folder, uidValidity, uid, raw, now,
                $"[This email has more than {options.Value.MaxHeaderLines} header fields. It was not parsed; its raw source is kept with the message.]", cancellationToken);

        ParsedMail mail;
        try
        {
            mail = mapper.Parse(raw, now, cancellationToken);
        }
        catch (UnmappableMailException ex)
        {
            return await QuarantineAsync(account, folder, uidValidity, uid, ex.Message, raw, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A mail that breaks the parser must not stop the mailbox: every redelivery would break it again.
            logger.LogError(ex, "Mail UID {Uid} of channel {Channel} could not be parsed", uid, account.Id);
            return await QuarantineAsync(account, folder, uidValidity, uid, $"The parser failed: {ex.GetType().Name}: {ex.Message}", raw, cancellationToken);
        }

        BounceReport? bounce;
        try
        {
            bounce = BounceReport.Read(mail.Message, raw);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogError(ex, "Mail UID {Uid} of channel {Channel}: reading it as a bounce failed", uid, account.Id);
            bounce = null;
        }

        if (bounce is { Failed: false })
            return await QuarantineAsync(account, folder, uidValidity, uid, bounce.Reason, raw, cancellationToken);
        if (bounce is not null)
        {
            var matched = await MarkBouncedAsync(account, bounce, cancellationToken);
            return await QuarantineAsync(account, folder, uidValidity, uid,
                matched > 0 ? $"Bounce for {matched} outbound message(s): {bounce.Reason}" : $"Bounce matching no outbound message of this mailbox: {bounce.Reason}", raw, cancellationToken);
        }
        if (string.Equals(mail.From.Address, settings.Address, StringComparison.OrdinalIgnoreCase))
            return await QuarantineAsync(account, folder, uidValidity, uid, $"Sent from this mailbox's own address {settings.Address} (a loop or a copy of our own mail).", raw, cancellationToken);

        if (settings.Forwarding is { } forwarding && await IsAgentAsync(forwarding, mail.From.Address, cancellationToken)
            && ForwardedMail.OriginalSender(mail.Message, mail.Message.TextBody ?? mail.Text) is { } original
            && !string.Equals(original.Address, settings.Address, StringComparison.OrdinalIgnoreCase))
        {
            // A redelivery keeps the path its first copy took, whatever the forwarding settings say now (they may have
            // changed between the hand-off and the acknowledgement): either key already stored decides.
            var asAgent = EmailIds.DedupeKey(mail.ExternalMessageId, mail.From.Address);
            var asForward = EmailIds.DedupeKey(mail.ExternalMessageId, original.Address);
            var first = await conversations.FindByMessagesAsync(account.Id, [asForward], [], cancellationToken) is not null ? asForward
                : await conversations.FindByMessagesAsync(account.Id, [asAgent], [], cancellationToken) is not null ? asAgent : null;
            if (first == asForward
                || (first is null && forwarding.Enabled && SenderAuthentication.IsAuthenticated(mail.Message, forwarding.TrustedAuthServId, mail.From.Address)))
                return await HandOffForwardedAsync(account, folder, uidValidity, uid, mail, original, raw, cancellationToken);
        }

        var sender = new SenderIdentity(IdentityKind.Email, mail.From.Address, string.IsNullOrWhiteSpace(mail.From.Name) ? null : mail.From.Name.Trim());
        var threading = await ThreadKeyAsync(account, mail, sender, cancellationToken);
        var (threadKey, dedupeKey, isNew) = (threading.ThreadKey, threading.DedupeKey, threading.New);
        // Machine-written mail (out-of-office, list mail, no-reply senders) is stored on the ticket it answers, where it
        // changes no status; one that answers nothing opens no ticket (the peers' most common loop complaint).
        var automatic = AutomaticMailGuard.AutomaticReason(mail.Message, accounts.EnabledOf(ChannelKind.Email).Select(a => a.SettingsAs<EmailChannelSettings>()?.Address).OfType<string>());
        if (automatic is not null && isNew)
            return await QuarantineAsync(account, folder, uidValidity, uid, $"Automatic mail ({automatic}) that answers no conversation: no ticket opened.", raw, cancellationToken);
        var message = new InboundMessage
        {
            ChannelAccountId = account.Id,
            ThreadKey = threadKey,
            ExternalMessageId = dedupeKey,
            Sender = sender,
            SentAt = mail.SentAt,
            Subject = mail.Subject is { Length: > 500 } long_ ? long_[..500] : mail.Subject,
            Text = mail.Text,
            Html = mail.Html,
            Attachments = mail.Attachments,
            RawSource = raw,
            RawContentType = "message/rfc822",
            AutomaticReason = automatic,
            Cc = OtherRecipients(mail, sender.Value),
            JoinTicket = threading.JoinTicket,
        };
        var outcome = await HandOffOrQuarantineAsync(account, folder, uidValidity, uid, message, raw, cancellationToken);
        // The mail that opened its conversation (also when redelivered: its thread key is its own dedupe key) gets the
        // acknowledgement, claimed before the mailbox acknowledges the mail; the claim is once per ticket.
        if (outcome is MailOutcome.Stored stored && automatic is null && threading.Opener && settings.AutoAcknowledgement is { Enabled: true } acknowledgement
            && (!stored.Result.Duplicate || StoredUnderTheseSettings(stored.Result, account, now)))
            await acknowledgements.ClaimAsync(account, mail, sender, stored.Result, acknowledgement, settings, cancellationToken);
        return outcome;
    }

    /// <summary>
    /// Whether a redelivered opener may still be acknowledged: only the redelivery of a crash between its hand-off and
    /// the claim, that is, a message stored recently and under the account's current settings. An old mail read again
    /// after a cursor reset (or stored before acknowledgements were switched on) gets none: a redelivery never mails
    /// past customers about old tickets.
    /// </summary>
    private bool StoredUnderTheseSettings(IngestResult stored, ChannelAccount account, DateTimeOffset now)
    {
        var bytes = stored.MessageId.ToByteArray(bigEndian: true);
        var ms = 0L;
        for (var i = 0; i < 6; i++)
            ms = (ms << 8) | bytes[i];
        var storedAt = DateTimeOffset.FromUnixTimeMilliseconds(ms);
        return stored.MessageId.Version == 7 && storedAt >= account.UpdatedAt && storedAt > now - options.Value.AutomaticMailWindow;
    }

    private async Task<bool> IsAgentAsync(ForwardingSettings forwarding, string address, CancellationToken cancellationToken) =>
        forwarding.AgentAddresses.Contains(address, StringComparer.OrdinalIgnoreCase)
        || (forwarding.ConsoleUsers && agents is not null && await agents.IsAgentAsync(address, cancellationToken));

    /// <summary>
    /// A mail an agent forwarded: a new ticket for the original sender, whatever the forward references (it would
    /// otherwise thread into the agent's own mail). Its dedupe key is the forward's own Message-ID qualified by the
    /// original sender, so a redelivery is a duplicate. The text says who forwarded it.
    /// </summary>
    private async Task<MailOutcome> HandOffForwardedAsync(ChannelAccount account, string folder, uint uidValidity, uint uid, ParsedMail mail, MimeKit.MailboxAddress original, byte[] raw, CancellationToken cancellationToken)
    {
        var key = EmailIds.DedupeKey(mail.ExternalMessageId, original.Address);
        var subject = ForwardedMail.Subject(mail.Subject);
        var message = new InboundMessage
        {
            ChannelAccountId = account.Id,
            ThreadKey = key,
            ExternalMessageId = key,
            Sender = new SenderIdentity(IdentityKind.Email, original.Address, string.IsNullOrWhiteSpace(original.Name) ? null : original.Name.Trim()),
            SentAt = mail.SentAt,
            Subject = subject is { Length: > 500 } long_ ? long_[..500] : subject,
            Text = $"[Forwarded by {mail.From.Address}]\n\n{mail.Text}",
            Html = mail.Html,
            Attachments = mail.Attachments,
            RawSource = raw,
            RawContentType = "message/rfc822",
        };
        logger.LogInformation("Mail UID {Uid} of channel {Channel}: forwarded by agent {Agent} for {Sender}", uid, account.Id, mail.From.Address, original.Address);
        return await HandOffOrQuarantineAsync(account, folder, uidValidity, uid, message, raw, cancellationToken);
    }

    /// <summary>A mail over the size limit, of which only the header was downloaded: handed off flagged, in a
    /// conversation of its own; its full source stays on the mail server.</summary>
    public Task<MailOutcome> ProcessOversizeAsync(ChannelAccount account, string folder, uint uidValidity, uint uid, byte[] header, long size, CancellationToken cancellationToken = default) =>
        HandOffOversizeAsync(account, folder, uidValidity, uid, header, time.GetUtcNow(),
            $"[This email is {size / 1024.0 / 1024.0:0.0} MB, over the {options.Value.MaxMessageBytes / 1024.0 / 1024.0:0.#} MB this mailbox downloads. " +
            $"Only its header was read; the full message stays on the mail server in folder '{folder}' (UID {uid}).]", cancellationToken, headerOnly: true);

    /// <summary>
    /// Hands a message off. A refusal of the message itself (a <see cref="DomainException"/> about its content, or the
    /// core rejecting a value as malformed) is deterministic: the mail is quarantined, so it is acknowledged and never
    /// retried forever. A refusal about the channel (unknown or disabled, e.g. disabled while a batch is handed off) is
    /// not about the mail: it is passed on, so nothing is acknowledged and the mail is read again once the channel is back.
    /// </summary>
    private async Task<MailOutcome> HandOffOrQuarantineAsync(ChannelAccount account, string folder, uint uidValidity, uint uid, InboundMessage message, byte[] raw, CancellationToken cancellationToken)
    {
        try
        {
            return new MailOutcome.Stored(await handOff.HandOffAsync(message, cancellationToken));
        }
        catch (DomainException ex) when (!IsAboutTheChannel(ex))
        {
            logger.LogWarning("Mail {MessageId} on channel {Channel} refused: {Reason}", message.ExternalMessageId, account.Id, ex.Message);
            return await QuarantineAsync(account, folder, uidValidity, uid, $"Refused by the core: {ex.Message}", raw, cancellationToken);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            logger.LogWarning(ex, "Mail {MessageId} on channel {Channel} could not be taken", message.ExternalMessageId, account.Id);
            return await QuarantineAsync(account, folder, uidValidity, uid, $"The core could not take the mail: {ex.Message}", raw, cancellationToken);
        }
    }

    private static bool IsAboutTheChannel(DomainException ex) =>
        ex.Field == "channelId" && ex.Kind is DomainErrorKind.NotFound or DomainErrorKind.Forbidden;

    /// <summary>Where a mail goes: its conversation's thread key, its dedupe key, whether it answers no conversation
    /// (<see cref="New"/>), whether it begins its conversation (<see cref="Opener"/>: it may be acknowledged), and the
    /// ticket a participant's new conversation joins (<see cref="JoinTicket"/>).</summary>
    internal sealed record Threading(string ThreadKey, string DedupeKey, bool New, bool Opener, long? JoinTicket = null);

    /// <summary>Most ids of one mail looked up under any sender (each is one indexed range read).</summary>
    private const int MaxAnySenderLookups = 20;

    /// <summary>The layers of threading (see the class remarks), and the mail's dedupe key.</summary>
    internal async Task<Threading> ThreadKeyAsync(ChannelAccount account, ParsedMail mail, SenderIdentity sender, CancellationToken cancellationToken)
    {
        var senderKey = GrainKeys.Identity(sender.Kind, sender.Value, account.Id);
        var dedupeKey = EmailIds.DedupeKey(mail.ExternalMessageId, sender.Value);
        var root = RootOf(mail);
        var rootKey = root is null ? null : EmailIds.RootThreadKey(root, sender.Value);
        // A redelivery goes where its first copy went, whatever its references say now. A copy stored before dedupe
        // keys named the sender is found by its bare Message-ID, but only in the same sender's conversation.
        // A participant's conversation is keyed like an opener's; redelivered, it must not acknowledge the customer's
        // ticket to the participant (review EN4), so a conversation on another customer's ticket opened nothing.
        if (await conversations.FindByMessagesAsync(account.Id, [dedupeKey], [], cancellationToken) is { } first)
            return new Threading(first.ThreadKey, dedupeKey, false, (first.ThreadKey == dedupeKey || first.ThreadKey == rootKey)
                && !await conversations.IsParticipantAsync(account.Id, first.ThreadKey, cancellationToken));
        if (dedupeKey != mail.ExternalMessageId
            && await conversations.FindByMessagesAsync(account.Id, [mail.ExternalMessageId], [], cancellationToken) is { } legacy
            && legacy.CustomerIdentity == senderKey)
            return new Threading(legacy.ThreadKey, mail.ExternalMessageId, false, legacy.ThreadKey == mail.ExternalMessageId);

        // Every inbound mail of a conversation is its customer's, so a reference to one is looked up under this
        // sender's key (and, for mails stored before the qualifier, the bare id, checked against the customer below).
        var inbound = new List<string>(mail.ReferencedIds.Count * 2);
        var outbound = new List<Guid>();
        var foreign = new List<string>();
        foreach (var id in mail.ReferencedIds)
        {
            if (EmailIds.OutboundMessageIdOf(id) is { } ours)
                outbound.Add(ours);
            else
            {
                inbound.AddRange([EmailIds.DedupeKey(id, sender.Value), id]);
                if (foreign.Count < MaxAnySenderLookups && !id.StartsWith("raw-sha256:", StringComparison.Ordinal))
                    foreign.Add(id);
            }
        }
        // From is anyone's to write (review EN5): where the account names the receiving server's authserv-id, a
        // participant's mail goes to the ticket only when that server authenticated the sender (dmarc, or dkim of the
        // From domain): when joining, and also for every later mail of a joined participant (review RA3).
        var authServId = account.SettingsAs<EmailChannelSettings>() is { } channel ? TrustedAuthServIdOf(channel) : null;
        var unverified = authServId is not null && !SenderAuthentication.IsAuthenticated(mail.Message, authServId, sender.Value);
        async Task<bool> MayContinueAsync(string threadKey) =>
            !unverified || !await conversations.IsParticipantAsync(account.Id, threadKey, cancellationToken);
        // A reply by the conversation's own customer continues it; anyone else is looked at below.
        var referenced = await conversations.FindByMessagesAsync(account.Id, inbound, outbound, cancellationToken);
        if (referenced is not null && referenced.CustomerIdentity == senderKey && await MayContinueAsync(referenced.ThreadKey))
            return new Threading(referenced.ThreadKey, dedupeKey, false, false);
        // A few tags at most, in one query; the first tag (in subject order) naming a conversation of this sender wins.
        var numbers = EmailIds.TicketNumbers(mail.Subject);
        IReadOnlyList<ThreadMatch> ofTickets = [];
        if (numbers.Count > 0)
        {
            ofTickets = await conversations.FindByTicketsAsync(account.Id, numbers, cancellationToken);
            foreach (var number in numbers)
                if (ofTickets.Where(c => c.TicketNumber == number).OrderBy(c => c.ThreadKey, StringComparer.Ordinal).FirstOrDefault(c => c.CustomerIdentity == senderKey) is { } tagged
                    && await MayContinueAsync(tagged.ThreadKey))
                    return new Threading(tagged.ThreadKey, dedupeKey, false, false);
        }
        // Replies that share a root we never stored (a mail sent outside the helpdesk, Zammad #5716): the first opened a
        // conversation keyed by that root and its sender; this sender's later replies to the same root join it.
        var rooted = root is null ? [] : await conversations.FindByThreadKeyPrefixAsync(account.Id, EmailIds.RootThreadKeyPrefix(root), cancellationToken);
        if (rooted.FirstOrDefault(c => c.ThreadKey == rootKey && c.CustomerIdentity == senderKey) is { } sameRoot)
            return new Threading(sameRoot.ThreadKey, dedupeKey, false, true);

        // Someone else (a colleague the customer copied in, or a person an agent's reply copied) answering the thread:
        // they join the ticket as a participant, with their own customer and conversation, but only when the ticket's
        // thread named them (To/Cc of a customer's mail, Cc of an agent's reply). A forged reference or tag from anyone
        // else gets a ticket of its own (Zammad #2444; Zendesk flags comments of users not on the ticket).
        var candidates = new List<long>();
        if (referenced is not null)
            candidates.Add(referenced.TicketNumber);
        else if (await conversations.FindByMessagesOfAnySenderAsync(account.Id, foreign, EmailIds.SenderQualifier, cancellationToken) is { } ofOther)
            candidates.Add(ofOther.TicketNumber);
        candidates.AddRange(rooted.Select(c => c.TicketNumber));
        foreach (var number in numbers)
            if (ofTickets.Any(c => c.TicketNumber == number))
                candidates.Add(number);
        // Being named is not enough (review EN1): the ticket's customer writes its inbound To/Cc, its Message-IDs and its
        // references, so a mail joins only if it answers our own mail that copied this sender, or is itself addressed to
        // the ticket's customer too (a reply-all). Anything else (a reused Message-ID, a shared root, a tag) opens a ticket
        // of the sender's own.
        var recipients = OtherRecipients(mail, sender.Value);
        // Not authenticated where the account asks for it (above): no joining.
        if (unverified)
            candidates.Clear();
        foreach (var ticket in candidates.Where(n => n > 0).Distinct().Take(5))
        {
            if (!await conversations.WasCopiedAsync(ticket, sender.Value, cancellationToken: cancellationToken)
                || !await conversations.MayJoinAsync(account.Id, ticket, sender.Value, outbound, recipients, cancellationToken))
                continue;
            var own = (await conversations.FindByTicketsAsync(account.Id, [ticket], cancellationToken))
                .OrderBy(c => c.ThreadKey, StringComparer.Ordinal).FirstOrDefault(c => c.CustomerIdentity == senderKey);
            return new Threading(own?.ThreadKey ?? dedupeKey, dedupeKey, false, false, ticket);
        }
        return rootKey is null ? new Threading(dedupeKey, dedupeKey, true, true) : new Threading(rootKey, dedupeKey, true, true);
    }

    /// <summary>The account's receiving server authserv-id: the acknowledgement's, else forwarding's; null when neither is set.</summary>
    private static string? TrustedAuthServIdOf(EmailChannelSettings channel) =>
        channel.AutoAcknowledgement?.TrustedAuthServId is { } own && !string.IsNullOrWhiteSpace(own) ? own
        : channel.Forwarding?.TrustedAuthServId is { } forwarding && !string.IsNullOrWhiteSpace(forwarding) ? forwarding : null;

    /// <summary>The oldest message a mail's thread names: the first id of References, else In-Reply-To.</summary>
    private static string? RootOf(ParsedMail mail)
    {
        var references = mail.Message.References;
        var root = references.Count > 0 ? EmailIds.Normalize(references[0]) : mail.ReferencedIds.FirstOrDefault();
        return root is null || root.StartsWith("raw-sha256:", StringComparison.Ordinal) ? null : root;
    }

    /// <summary>The other addresses a mail was sent to (To and Cc), without our own mailboxes and the sender: kept with
    /// the message, they say who may later reply into the ticket as a participant.</summary>
    private IReadOnlyList<string> OtherRecipients(ParsedMail mail, string sender)
    {
        var ours = accounts.EnabledOf(ChannelKind.Email).Select(a => a.SettingsAs<EmailChannelSettings>()?.Address).OfType<string>()
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        var list = new List<string>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { sender };
        foreach (var mailbox in mail.Message.To.Mailboxes.Concat(mail.Message.Cc.Mailboxes).Take(200))
        {
            if (list.Count == 50)
                break;
            var address = mailbox.Address?.Trim();
            if (address is null || !MimeMessageMapper.IsAddress(address) || ours.Contains(address) || !seen.Add(address))
                continue;
            list.Add(address);
        }
        return list;
    }

    private async Task<int> MarkBouncedAsync(ChannelAccount account, BounceReport bounce, CancellationToken cancellationToken)
    {
        var matched = 0;
        foreach (var id in bounce.OutboundMessageIds.Take(20))
        {
            if (!await conversations.IsOutboundAsync(account.Id, id, cancellationToken))
                continue;
            await grains.GetGrain<IMessageDeliveryGrain>(id).UpdateAsync(new DeliveryUpdate(DeliveryStatus.Failed, bounce.Reason, ChannelAccountId: account.Id), cancellationToken);
            matched++;
        }
        return matched;
    }

    /// <summary>Too large (or too many parts) to parse: handed off with its raw source and a note, in a conversation of its own.</summary>
    private async Task<MailOutcome> HandOffOversizeAsync(ChannelAccount account, string folder, uint uidValidity, uint uid, byte[] raw, DateTimeOffset now, string note, CancellationToken cancellationToken, bool headerOnly = false)
    {
        var headers = OversizeHeaders.Read(raw);
        // The same check as a parsed mail's sender: an address the core refuses would fail the hand-off on every retry.
        var from = MimeMessageMapper.IsAddress(headers.From) ? headers.From! : "unknown-sender@invalid";
        var externalId = EmailIds.DedupeKey(EmailIds.Normalize(headers.MessageId) ?? EmailIds.OfRawSource(raw), from);
        var message = new InboundMessage
        {
            ChannelAccountId = account.Id,
            ThreadKey = externalId,
            ExternalMessageId = externalId,
            Sender = new SenderIdentity(IdentityKind.Email, from),
            SentAt = now,
            Subject = headers.Subject ?? "(oversized email)",
            Text = note,
            RawSource = raw,
            RawContentType = headerOnly ? "text/rfc822-headers" : "message/rfc822",
        };
        return await HandOffOrQuarantineAsync(account, folder, uidValidity, uid, message, raw, cancellationToken);
    }

    private async Task<MailOutcome> QuarantineAsync(ChannelAccount account, string folder, uint uidValidity, uint uid, string reason, byte[] raw, CancellationToken cancellationToken)
    {
        logger.LogWarning("Mail UID {Uid} in {Folder} of channel {Channel} quarantined: {Reason}", uid, folder, account.Id, reason);
        await mailboxes.QuarantineAsync(new QuarantinedMail(account.Id, folder, uidValidity, uid, reason, raw, time.GetUtcNow()), cancellationToken);
        return new MailOutcome.Quarantined(reason);
    }
}
