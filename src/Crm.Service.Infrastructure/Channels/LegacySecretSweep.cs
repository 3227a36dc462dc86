using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Infrastructure.Channels;

/// <summary>
/// Once the silo is active, encrypts channel secrets that a database older than encryption at rest still holds in
/// plain text, through each account's grain (their single writer). Without it a plaintext secret stayed on disk (and in
/// every backup) until an admin happened to change that account. Runs in the background: start-up does not wait.
/// </summary>
internal sealed class LegacySecretSweep(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, IGrainFactory grains,
    ILogger<LegacySecretSweep> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _sweep = Task.CompletedTask;

    public void Participate(ISiloLifecycle lifecycle) => lifecycle.Subscribe(nameof(LegacySecretSweep), ServiceLifecycleStage.Active,
        _ =>
        {
            _sweep = Task.Run(() => SweepAsync(_stopping.Token));
            return Task.CompletedTask;
        },
        async _ =>
        {
            await _stopping.CancelAsync();
            await _sweep.ContinueWith(_ => { }, TaskScheduler.Default);
        });

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        try
        {
            await initializer.EnsureInitializedAsync(cancellationToken);
            List<string> ids;
            await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
            {
                var accounts = await db.ChannelAccounts.AsNoTracking().Select(a => new { a.Id, a.Secret, a.SecretSettings }).ToListAsync(cancellationToken);
                ids = [.. accounts
                    .Where(a => (a.Secret is { } s && !ProtectedSecrets.IsProtected(s)) || a.SecretSettings.Values.Any(v => !ProtectedSecrets.IsProtected(v)))
                    .Select(a => a.Id)];
            }
            foreach (var id in ids)
            {
                if (await grains.GetGrain<IChannelAccountGrain>(id).ProtectStoredSecretsAsync(cancellationToken))
                    logger.LogInformation("Encrypted the plain-text secrets an older version stored for channel {Channel}", id);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            // The secrets still work in plain text; the next start (or the account's next write) tries again.
            logger.LogWarning(ex, "Encrypting plain-text channel secrets from an older version failed; they stay readable and are retried at the next start");
        }
    }
}
