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
/// Delivery is at least once: a crash between a send and its bookkeeping sends again, so receivers dedupe on the message id.
/// </summary>
internal sealed class OutboxDispatcher(
    IDbContextFactory<CrmDbContext> contexts,
    StoreInitializer initializer,
    ICrmStore store,
    IGrainFactory grains,
    IEnumerable<IOutboundSender> senders,
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

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await initializer.EnsureInitializedAsync(stoppingToken);
        var settings = options.Value;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var due = await DueAsync(settings.MaxParallelSends * 4, stoppingToken);
                if (due.Count > 0)
                {
                    await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = settings.MaxParallelSends, CancellationToken = stoppingToken },
                        async (item, ct) => await DispatchAsync(item, settings, ct));
                    continue;
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

    private async Task<List<OutboxRecord>> DueAsync(int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Outbox.AsNoTracking()
            .Where(o => o.State == OutboxState.Pending && o.NextAttemptAt <= now)
            .OrderBy(o => o.NextAttemptAt)
            .Take(limit)
            .ToListAsync(cancellationToken);
    }

    private async Task DispatchAsync(OutboxRecord item, OutboxOptions settings, CancellationToken cancellationToken)
    {
        item.Attempts++;
        var result = await SendAsync(item, settings, cancellationToken);
        var delivery = grains.GetGrain<IMessageDeliveryGrain>(item.MessageId);
        var now = time.GetUtcNow();
        if (result.Success)
        {
            await delivery.UpdateAsync(new DeliveryUpdate(DeliveryStatus.Sent, null, result.ExternalId), cancellationToken);
            item.State = OutboxState.Done;
            item.LastError = null;
        }
        else if (result.Permanent || item.Attempts >= settings.MaxAttempts)
        {
            var reason = $"{result.Error} (attempt {item.Attempts}{(result.Permanent ? ", not retried" : ", giving up")})";
            await delivery.UpdateAsync(new DeliveryUpdate(DeliveryStatus.Failed, reason), cancellationToken);
            item.State = OutboxState.Failed;
            item.LastError = reason;
            logger.LogWarning("Outbound message {MessageId} failed: {Reason}", item.MessageId, reason);
        }
        else
        {
            item.NextAttemptAt = now + settings.DelayAfter(item.Attempts);
            item.LastError = result.Error;
            await delivery.UpdateAsync(new DeliveryUpdate(DeliveryStatus.Queued,
                $"Attempt {item.Attempts} failed: {result.Error}. Next attempt at {item.NextAttemptAt:u}."), cancellationToken);
            logger.LogInformation("Outbound message {MessageId} attempt {Attempt} failed: {Error}; retrying at {NextAttempt}",
                item.MessageId, item.Attempts, result.Error, item.NextAttemptAt);
        }
        await store.CommitAsync(new WriteSet().Update(item), cancellationToken);
    }

    private async Task<OutboundResult> SendAsync(OutboxRecord item, OutboxOptions settings, CancellationToken cancellationToken)
    {
        if (!_senders.TryGetValue(item.Channel, out var sender))
            return OutboundResult.Fail($"No connector sends {item.Channel} messages in this deployment.");
        var message = await store.FindMessageAsync(item.MessageId, cancellationToken);
        var conversation = await store.FindConversationAsync(item.ConversationKey, cancellationToken);
        if (message is null || conversation is null)
            return OutboundResult.Fail($"Message {item.MessageId} or its conversation is no longer stored.");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.SendTimeout);
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
            }, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return OutboundResult.Retry($"No answer within {settings.SendTimeout.TotalSeconds:0} s.");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return OutboundResult.Retry($"{ex.GetType().Name}: {ex.Message}");
        }
    }
}
