using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Email;

/// <summary>Removes quarantined mail older than <see cref="EmailChannelOptions.QuarantineRetention"/> from the email
/// accounts, every <see cref="EmailChannelOptions.QuarantinePruneInterval"/> (on the host's clock, so tests can move it).</summary>
internal sealed class QuarantinePruner(
    IChannelAccounts accounts,
    IMailboxAdminStore store,
    IOptions<EmailChannelOptions> options,
    TimeProvider time,
    ILogger<QuarantinePruner> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PruneAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The store may be down for a while: try again next round.
                logger.LogWarning(ex, "Pruning the email quarantine failed; trying again in {Interval}", options.Value.QuarantinePruneInterval);
            }
            try
            {
                await Task.Delay(options.Value.QuarantinePruneInterval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    internal async Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        // Every email account, disabled ones too: retention is a promise about the bytes kept, whatever the account's state.
        // (and of removed ones): other kinds keep their own retention.
        var ids = (await store.QuarantinedAccountsAsync(cancellationToken)).Where(id => accounts.Find(id) is null or { Kind: ChannelKind.Email }).ToList();
        var pruned = await store.PruneQuarantineAsync(ids, time.GetUtcNow() - options.Value.QuarantineRetention, cancellationToken);
        if (pruned > 0)
            logger.LogInformation("Pruned {Count} quarantined mail(s) older than {Retention}", pruned, options.Value.QuarantineRetention);
        return pruned;
    }
}
