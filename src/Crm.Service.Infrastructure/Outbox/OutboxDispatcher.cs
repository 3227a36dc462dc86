using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Outbox;

/// <summary>
/// Sends committed outbound messages through their channel's <see cref="IOutboundSender"/>, retrying with
/// exponential backoff, and reports each outcome to the message's <see cref="IMessageDeliveryGrain"/>.
/// Each attempt is recorded (with its backoff) before the send, so a send whose bookkeeping fails, or a crash
/// after it, is retried after the backoff, never in a hot loop. Webhook delivery is at least once: receivers dedupe
/// on the message id. Email and Telegram cannot dedupe, so their rows are marked in flight before the send, and a row
/// found in flight (a crash mid-send) is "not confirmed" rather than sent again (review EM1). Items are handled one by one: a failure of one never aborts the pass or the other sends.
/// Agents see a generic delivery error; the channel's own words go to the outbox row and the log.
/// </summary>
internal sealed class OutboxDispatcher(
    IDbContextFactory<CrmDbContext> contexts,
    StoreInitializer initializer,
    ICrmStore store,
    IBlobStore blobs,
    IGrainFactory grains,
    IEnumerable<IOutboundSender> senders,
    IChannelHealth health,
    IOptions<OutboxOptions> options,
    TimeProvider time,
    ILogger<OutboxDispatcher> logger) : BackgroundService, IOutboxSignal
{
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly Dictionary<ChannelKind, IOutboundSender> _senders = senders.ToDictionary(s => s.Channel);

    public void Notify()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    /// <summary>Rows being sent now, so a look for due rows does not start them twice.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, byte> _running = new();

    /// <summary>
    /// Each due row is sent on its own, up to <see cref="OutboxOptions.MaxParallelSends"/> at once, and a free place is
    /// filled at once: a slow send (a large reply to a slow mail server) holds one place, never the rows queued after it
    /// (review LD5; a pass used to wait for its whole batch). A send whose row moved wakes the loop to fill its place;
    /// one whose attempt could not be recorded (a full disk, a busy database) waits for the poll, so it never spins.
    /// </summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await initializer.EnsureInitializedAsync(stoppingToken);
        var settings = options.Value;
        using var slots = new SemaphoreSlim(settings.MaxParallelSends);
        var sends = new List<Task>();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    sends.RemoveAll(t => t.IsCompleted);
                    if (slots.CurrentCount is var free and > 0)
                    {
                        var due = await DueAsync(free + _running.Count, stoppingToken);
                        foreach (var item in due.Where(d => !_running.ContainsKey(d.Id)).Take(free))
                        {
                            await slots.WaitAsync(stoppingToken);
                            _running[item.Id] = 0;
                            sends.Add(Task.Run(async () =>
                            {
                                try
                                {
                                    if (await DispatchAsync(item, settings, stoppingToken))
                                        Notify();
                                }
                                finally
                                {
                                    _running.TryRemove(item.Id, out _);
                                    slots.Release();
                                }
                            }, CancellationToken.None));
                        }
                    }
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    logger.LogError(ex, "Outbox pass failed; retrying in {Interval}", settings.PollInterval);
                }
                try
                {
                    await _wake.WaitAsync(settings.PollInterval, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        finally
        {
            // Sends in flight end with the stopping token. Their outcome is recorded regardless; one cut short before the
            // channel took anything is retried after a start, one that may have been delivered is "not confirmed" (EM1).
            await Task.WhenAll(sends).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task<List<OutboxRecord>> DueAsync(int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // Replies of a disabled channel are marked waiting once and then parked here, so a backlog neither costs
        // writes nor crowds out other channels; they are due again the moment the channel is enabled.
        return await db.Outbox.AsNoTracking()
            .Where(o => o.State == OutboxState.Pending && o.NextAttemptAt <= now)
            .Where(o => o.LastError != WaitingMarker || db.ChannelAccounts.Any(c => c.Id == o.ChannelAccountId && c.Enabled))
            .OrderBy(o => o.NextAttemptAt)
            .Take(limit)
            .ToListAsync(cancellationToken);
    }

    /// <summary>Marks an outbox row whose channel is disabled (see <see cref="DueAsync"/>).</summary>
    internal const string WaitingMarker = "waiting: channel disabled";

    /// <summary>Handles one due row; true when its state moved (the attempt was recorded, or it was parked).</summary>
    private async Task<bool> DispatchAsync(OutboxRecord item, OutboxOptions settings, CancellationToken cancellationToken)
    {
        var recorded = false;
        try
        {
            await DispatchOneAsync(item, settings, () => recorded = true, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutting down: the recorded attempt is retried after the next start.
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Outbound message {MessageId}: attempt {Attempt} could not be completed; it is retried at {NextAttempt}",
                item.MessageId, item.Attempts, item.NextAttemptAt);
        }
        return recorded;
    }

    private async Task DispatchOneAsync(OutboxRecord item, OutboxOptions settings, Action recorded, CancellationToken cancellationToken)
    {
        var delivery = grains.GetGrain<IMessageDeliveryGrain>(item.MessageId);
        if (Settlement.Read(item.LastError) is { } unfinished)
        {
            // The outcome was committed with the row, but the delivery status after it was not (a failed grain call, a
            // crash between the two): apply it now, never "not confirmed" (review EO3).
            await ApplyAsync(item, delivery, unfinished);
            recorded();
            return;
        }
        var channel = await grains.GetGrain<IChannelAccountGrain>(item.ChannelAccountId).GetAsync();
        if (channel is { Enabled: false } && !IsInFlight(item.LastError))
        {
            // A disabled channel sends nothing; its replies wait, and say so, until an admin enables it.
            item.LastError = WaitingMarker;
            await store.CommitAsync(new WriteSet().Update(item.Copy()), cancellationToken);
            recorded();
            await delivery.UpdateAsync(new DeliveryUpdate(DeliveryStatus.Queued,
                $"Waiting: channel '{item.ChannelAccountId}' is disabled; the reply is sent when an admin enables it."), cancellationToken);
            return;
        }

        var message = await store.FindMessageAsync(item.MessageId, cancellationToken);
        if (message is { Delivery: DeliveryStatus.Sent or DeliveryStatus.Delivered or DeliveryStatus.Failed })
        {
            // Sent before a crash (or a failed commit) kept this row pending: never send it twice on purpose.
            item.State = message.Delivery == DeliveryStatus.Failed ? OutboxState.Failed : OutboxState.Done;
            await store.CommitAsync(new WriteSet().Update(item.Copy()), cancellationToken);
            recorded();
            return;
        }

        if (IsInFlight(item.LastError))
        {
            // Found in flight: the service stopped or crashed during a send whose channel cannot dedupe. It may well have
            // reached the customer, so it is treated like an unknown outcome: not sent again on its own (review EM1). A
            // message in parts names the part that was on its way; the parts before it are confirmed (review EO1).
            var part = InFlightPart(item.LastError);
            var error = part is { Parts: > 1 } p
                ? $"The send of part {p.Part} of {p.Parts} (attempt {item.Attempts}) was interrupted (the service stopped or crashed); {p.Part - 1} of {p.Parts} parts sent; not retried, as part {p.Part} may have been delivered."
                : $"The send of attempt {item.Attempts} was interrupted (the service stopped or crashed); not retried, as it may have been delivered.";
            logger.LogWarning("Outbound message {MessageId} on channel {Channel}: {Reason}", item.MessageId, item.ChannelAccountId, error);
            await SettleAsync(item, delivery, new Settlement(DeliveryStatus.Failed, part is { Parts: > 1 } q
                ? $"Not confirmed: {InterruptedPartsReason(q.Part - 1, q.Parts)}." : $"Not confirmed: {InterruptedReason}.", null, OutboxState.Failed, error));
            recorded();
            return;
        }

        var atMostOnce = _senders.TryGetValue(item.Channel, out var known) && known.ResendDuplicates;
        var before = item.LastError;
        item.Attempts++;
        item.NextAttemptAt = time.GetUtcNow() + settings.DelayAfter(item.Attempts);
        // A sender that marks each request itself is not marked here: until its first mark nothing is on its way, and a
        // kill in between (files read, chat found) resumes instead of being "not confirmed" (review RC3).
        if (atMostOnce && !known!.MarksOwnParts)
            item.LastError = InFlightMarker;
        await store.CommitAsync(new WriteSet().Update(item.Copy()), cancellationToken);
        recorded();

        OutboundResult result;
        try
        {
            result = channel is null
                ? OutboundResult.Fail($"Channel '{item.ChannelAccountId}' no longer exists.")
                : await SendAsync(item, message, settings, before, cancellationToken);
        }
        catch (OperationCanceledException) when (atMostOnce && cancellationToken.IsCancellationRequested)
        {
            // Stopped while nothing was on its way to the channel: before the first request, or between the parts of a
            // message whose confirmed parts are stored (SentParts). A sender that may have delivered says Unknown
            // instead of throwing. The marker goes, so the attempt is retried after a start, after the stored parts.
            item.LastError = before;
            await store.CommitAsync(new WriteSet().Update(item.Copy()), CancellationToken.None);
            throw;
        }
        // From here the outcome is known and is recorded even when the service is stopping: a stop that dropped it
        // would leave the row due, and the customer would get the reply again (review EM1). The order matters for a
        // crash or a failed write between the steps (reviews FX4, EO3): a sent or finally failed outcome is committed
        // with the row first (a settlement, which the next pass applies if the rest fails, never "not confirmed"), then
        // the delivery status, then the row's final state; a retry clears the in-flight marker before anything else,
        // since nothing reached the customer. The channel's health comes last: a failed report can no longer leave the
        // row in flight.
        var done = CancellationToken.None;
        if (result.Success)
        {
            await SettleAsync(item, delivery, new Settlement(DeliveryStatus.Sent, null, result.ExternalId, OutboxState.Done, null));
            await health.ReportSuccessAsync(item.ChannelAccountId, done);
        }
        else if (result.Permanent || item.Attempts >= settings.MaxAttempts)
        {
            var error = $"{result.Error} (attempt {item.Attempts}{(result.Permanent ? ", not retried" : ", giving up")})";
            logger.LogWarning("Outbound message {MessageId} on channel {Channel} failed: {Reason}", item.MessageId, item.ChannelAccountId, error);
            await SettleAsync(item, delivery, new Settlement(DeliveryStatus.Failed, result.AgentReason is { Length: > 0 } reason
                ? result.Ambiguous ? $"Not confirmed: {reason}." : $"Delivery failed: {reason}."
                : $"Delivery failed after {item.Attempts} attempt(s). An admin can see the channel's answer in the channel's health.", null, OutboxState.Failed, error));
            // A refusal of this message alone (a customer who blocked the bot) proves the server was reached: no channel
            // error, or one such customer would show the channel as not connected (review CT12). A send cut short by the
            // service stopping says nothing about the channel either (review EO5).
            if (result.RefusedByRecipient)
                await health.ReportSuccessAsync(item.ChannelAccountId, done);
            else if (!(result.Ambiguous && cancellationToken.IsCancellationRequested))
                await health.ReportErrorAsync(item.ChannelAccountId, result.Error ?? "unknown error", done);
        }
        else
        {
            item.LastError = result.Error;
            await store.CommitAsync(new WriteSet().Update(item.Copy()), done);
            logger.LogInformation("Outbound message {MessageId} on channel {Channel}, attempt {Attempt} failed: {Error}; retrying at {NextAttempt}",
                item.MessageId, item.ChannelAccountId, item.Attempts, result.Error, item.NextAttemptAt);
            await health.ReportErrorAsync(item.ChannelAccountId, result.Error ?? "unknown error", done);
            await delivery.UpdateAsync(new DeliveryUpdate(DeliveryStatus.Queued,
                $"Attempt {item.Attempts} failed; the next attempt is at {item.NextAttemptAt:u}."), done);
        }
    }

    /// <summary>Marks a row whose send started on a channel where a resend duplicates (see
    /// <see cref="IOutboundSender.ResendDuplicates"/>); committed with the attempt, before the send.</summary>
    internal const string InFlightMarker = "in flight: send started, outcome not recorded";

    /// <summary>The in-flight mark of a message in parts, right before part <paramref name="part"/> of
    /// <paramref name="parts"/> goes (<see cref="OutboundDelivery.MarkPartInFlightAsync"/>, review EO1).</summary>
    internal static string InFlightPartMarker(int part, int parts) => $"in flight: part {part} of {parts} on its way, outcome not recorded";

    private static bool IsInFlight(string? lastError) => lastError?.StartsWith("in flight: ", StringComparison.Ordinal) == true;

    private static (int Part, int Parts)? InFlightPart(string? lastError)
    {
        var match = lastError is null ? null : System.Text.RegularExpressions.Regex.Match(lastError, @"^in flight: part (\d+) of (\d+) ");
        return match is { Success: true } && int.TryParse(match.Groups[1].ValueSpan, out var part) && int.TryParse(match.Groups[2].ValueSpan, out var parts)
            ? (part, parts) : null;
    }

    internal const string InterruptedReason = "the service stopped while this reply was being sent, so it may have been delivered; check with the customer before resending";

    internal static string InterruptedPartsReason(int sent, int parts) => sent == 0
        ? $"the service stopped while part 1 of {parts} of this reply was being sent: 0 of {parts} parts are confirmed, and part 1 may have reached the customer; check with the customer before resending"
        : $"the service stopped while part {sent + 1} of {parts} of this reply was being sent: {sent} of {parts} parts reached the customer, and part {sent + 1} may have too; check with the customer before resending the rest";

    /// <summary>A final outcome on its way to the delivery status: committed with the row (in <see cref="OutboxRecord.LastError"/>,
    /// the row still pending) before the delivery grain hears of it, so a failure in between is finished by the next
    /// pass instead of being taken for a send interrupted in flight (review EO3).</summary>
    private sealed record Settlement(DeliveryStatus Status, string? Reason, string? ExternalId, OutboxState State, string? Error)
    {
        private const string Prefix = "settling: ";

        public string Write() => Prefix + System.Text.Json.JsonSerializer.Serialize(this);

        public static Settlement? Read(string? lastError) =>
            lastError?.StartsWith(Prefix, StringComparison.Ordinal) == true
                ? System.Text.Json.JsonSerializer.Deserialize<Settlement>(lastError.AsSpan(Prefix.Length))
                : null;
    }

    private async Task SettleAsync(OutboxRecord item, IMessageDeliveryGrain delivery, Settlement outcome)
    {
        item.LastError = outcome.Write();
        await store.CommitAsync(new WriteSet().Update(item.Copy()), CancellationToken.None);
        await ApplyAsync(item, delivery, outcome);
    }

    private async Task ApplyAsync(OutboxRecord item, IMessageDeliveryGrain delivery, Settlement outcome)
    {
        try
        {
            await delivery.UpdateAsync(new DeliveryUpdate(outcome.Status, outcome.Reason, outcome.ExternalId), CancellationToken.None);
        }
        catch (DomainException ex)
        {
            // The message is gone (or not outbound): there is no status to set, and no pass could ever set it.
            logger.LogWarning("Outbound message {MessageId}: its delivery status could not be set: {Reason}", item.MessageId, ex.Message);
        }
        item.State = outcome.State;
        item.LastError = outcome.Error;
        await store.CommitAsync(new WriteSet().Update(item.Copy()), CancellationToken.None);
    }

    private async Task<OutboundResult> SendAsync(OutboxRecord item, MessageRecord? message, OutboxOptions settings, string? before, CancellationToken cancellationToken)
    {
        if (!_senders.TryGetValue(item.Channel, out var sender))
            return OutboundResult.Fail($"No connector sends {item.Channel} messages in this deployment.");
        var conversation = await store.FindConversationAsync(item.ConversationKey, cancellationToken);
        if (message is null || conversation is null)
            return OutboundResult.Fail($"Message {item.MessageId} or its conversation is no longer stored.");
        // The reply's files were committed with it (see TicketGrain.ReplyAsync): every attempt sends the same ones.
        var files = new List<OutboundAttachment>(message.AttachmentCount);
        if (message.AttachmentCount > 0)
        {
            foreach (var attachment in await store.FindAttachmentsAsync(message.Id, cancellationToken))
            {
                await using var stream = blobs.Open(attachment.Sha256);
                if (stream is null)
                    return OutboundResult.Fail($"File '{attachment.FileName}' ({attachment.Sha256}) of message {message.Id} is missing from the blob store; the reply is not sent without it.");
                // One exact-size array per file, read straight from the blob (review ER5): no MemoryStream growing on the
                // large-object heap and copied again by ToArray on every attempt.
                if (stream.CanSeek && stream.Length != attachment.Length)
                    return OutboundResult.Fail($"File '{attachment.FileName}' ({attachment.Sha256}) of message {message.Id} is {stream.Length} bytes in the blob store, not {attachment.Length}; the reply is not sent with it.");
                var content = GC.AllocateUninitializedArray<byte>(checked((int)attachment.Length));
                await stream.ReadExactlyAsync(content, cancellationToken);
                files.Add(new OutboundAttachment(attachment.FileName, attachment.ContentType, content));
            }
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var allowed = settings.SendTimeoutFor(files.Sum(f => (long)f.Content.Length));
        timeout.CancelAfter(allowed);
        try
        {
            return await sender.SendAsync(new OutboundDelivery
            {
                MessageId = message.Id,
                TicketNumber = message.TicketNumber,
                ChannelAccountId = item.ChannelAccountId,
                ThreadKey = conversation.ThreadKey,
                Recipient = conversation.CustomerIdentity,
                Author = message.Author,
                Text = message.Text,
                Html = message.Html,
                CreatedAt = message.CreatedAt,
                Attempt = item.Attempts,
                Attachments = files,
                Cc = message.Cc?.Split('\n', StringSplitOptions.RemoveEmptyEntries) ?? [],
                SentParts = item.SentParts,
                // Committed with the row before the next part goes, whatever the stop (ER10, FX1), with the in-flight mark
                // lifted: nothing is on its way until the next part is marked, so a kill in between resumes (EO1).
                RecordSentPartsAsync = async parts =>
                {
                    item.SentParts = parts.Length == 0 ? null : parts;
                    item.LastError = before;
                    await store.CommitAsync(new WriteSet().Update(item.Copy()), CancellationToken.None);
                },
                MarkPartInFlightAsync = async (part, parts) =>
                {
                    item.LastError = InFlightPartMarker(part, parts);
                    await store.CommitAsync(new WriteSet().Update(item.Copy()), CancellationToken.None);
                },
            }, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return OutboundResult.Retry($"No answer within {allowed.TotalSeconds:0} s.");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return OutboundResult.Retry($"{ex.GetType().Name}: {ex.Message}");
        }
    }
}
