using System.Collections.Frozen;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Infrastructure.Channels;

/// <summary>
/// Every channel account in memory, secrets decrypted: loaded from the store at start, refreshed from the change feed
/// and, on the node where an admin changed an account, at once (<see cref="RefreshAsync"/>). The inbound hot path looks
/// accounts up here, so an unknown or forged id is answered without a grain activation or a query.
/// </summary>
public sealed class ChannelAccountDirectory(
    IDbContextFactory<CrmDbContext> contexts,
    StoreInitializer initializer,
    ISecretProtector secrets,
    ChannelSettingsCatalog catalog,
    ILogger<ChannelAccountDirectory> logger) : IChannelAccounts, IChangeConsumer, IHostedService
{
    private readonly Lock _write = new();
    // One read-and-apply at a time: a read that starts after another finished sees a row at least as new, so the
    // order of application is the order of the rows. (Comparing UpdatedAt would drop a change made after the clock
    // stepped back, and two nodes' clocks never agree anyway.)
    private readonly SemaphoreSlim _refresh = new(1, 1);
    // Replaced whole on every change (accounts change rarely), so readers never lock.
    private volatile FrozenDictionary<string, ChannelAccount> _accounts = FrozenDictionary<string, ChannelAccount>.Empty;

    public event Action<ChannelAccountChange>? Changed;

    public string Name => "channel-directory";

    /// <summary>Each node keeps its own copy of the accounts: each needs every change.</summary>
    public bool EveryNode => true;

    public ChannelAccount? Find(string id) => _accounts.GetValueOrDefault(id);

    public IReadOnlyList<ChannelAccount> EnabledOf(ChannelKind kind) =>
        [.. _accounts.Values.Where(a => a.Enabled && a.Kind == kind).OrderBy(a => a.Id, StringComparer.Ordinal)];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            var rows = await db.ChannelAccounts.AsNoTracking().ToListAsync(cancellationToken);
            var loaded = rows.Select(Compose).OfType<ChannelAccount>().ToFrozenDictionary(a => a.Id, StringComparer.Ordinal);
            lock (_write)
                _accounts = loaded;
        }
        finally
        {
            _refresh.Release();
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Re-reads the account changes name; applying a change twice reads the same row twice.</summary>
    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        foreach (var id in changes.Where(c => c.Entity == ChangeEntities.ChannelAccount).Select(c => c.EntityId).Distinct(StringComparer.Ordinal))
            await RefreshAsync(id, cancellationToken);
    }

    /// <summary>Changes were pruned before this node read them: re-reads every account it knows or the store has, so
    /// each difference raises <see cref="Changed"/> as a change from the feed would have.</summary>
    public async Task<bool> ResetAsync(CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        List<string> stored;
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
            stored = await db.ChannelAccounts.AsNoTracking().Select(c => c.Id).ToListAsync(cancellationToken);
        foreach (var id in stored.Union(_accounts.Keys, StringComparer.Ordinal).ToList())
            await RefreshAsync(id, cancellationToken);
        return true;
    }

    /// <summary>After an admin change on this node: refresh now if possible. A failure is only logged, because the
    /// change is committed (and a secret it issued must still reach the admin); the change feed brings it here soon.</summary>
    public async Task RefreshSoonAsync(string id, CancellationToken cancellationToken = default)
    {
        try
        {
            await RefreshAsync(id, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "Channel {Channel} changed but could not be re-read now; the change feed will apply it", id);
        }
    }

    /// <summary>Reads one account from the store and replaces (or removes) it here.</summary>
    public async Task RefreshAsync(string id, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        ChannelAccount? before, after;
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            var row = await db.ChannelAccounts.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id, cancellationToken);
            after = row is null ? null : Compose(row);
            lock (_write)
            {
                before = _accounts.GetValueOrDefault(id);
                if (before == after)
                    return;
                var next = new Dictionary<string, ChannelAccount>(_accounts, StringComparer.Ordinal);
                if (after is null)
                    next.Remove(id);
                else
                    next[id] = after;
                _accounts = next.ToFrozenDictionary(StringComparer.Ordinal);
            }
        }
        finally
        {
            _refresh.Release();
        }
        try
        {
            Changed?.Invoke(new ChannelAccountChange(before, after));
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "A handler of channel account changes failed for {Channel}", id);
        }
    }

    private ChannelAccount? Compose(ChannelAccountRecord row)
    {
        try
        {
            var secretSettings = row.SecretSettings.ToDictionary(s => s.Key, s => secrets.Unprotect(s.Value), StringComparer.Ordinal);
            var secret = row.Secret is null ? null : secrets.Unprotect(row.Secret);
            return new ChannelAccount(row.Id, row.Kind, row.Name, row.Enabled, secret, catalog.Compose(row.Kind, row.SettingsOrLegacy(), secretSettings), row.UpdatedAt);
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            // Keys lost or from another install: the account cannot verify anything, so it is left out, loudly.
            logger.LogError(ex, "Channel account {Channel}'s secrets cannot be decrypted with this install's keys; it is unavailable until its secret is rotated", row.Id);
            return null;
        }
    }
}
