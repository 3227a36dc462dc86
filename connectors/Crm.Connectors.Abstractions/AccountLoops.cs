using System.Threading.Channels;
using Crm.Service.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crm.Connectors.Abstractions;

/// <summary>
/// Keeps exactly one long-running loop per enabled account of one channel kind on this node (a bot's poller, a
/// mailbox reader): started with the host, and started, restarted (settings changed) or stopped (disabled, removed)
/// when <see cref="IChannelAccounts.Changed"/> says so, without a restart. The change handler only queues the
/// account id; this service's own loop does the rest, so the directory's thread is never held up.
/// </summary>
/// <remarks>Embedded mode runs one node, so this is one loop per account in the deployment; cluster mode needs a
/// lease per account (a grain) before a node starts one. Not done yet.</remarks>
public abstract class AccountLoopSupervisor<TSettings>(IChannelAccounts accounts, ChannelKind kind, ILogger logger) : BackgroundService
    where TSettings : class, IChannelSettings
{
    private readonly Channel<string> _changed = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, Running> _running = new(StringComparer.Ordinal);

    private sealed record Running(string AccountId, TSettings Settings, CancellationTokenSource Stop, Task Loop);

    /// <summary>How long a stopping loop may take before it is left to finish on its own.</summary>
    protected virtual TimeSpan StopTimeout => TimeSpan.FromSeconds(10);

    /// <summary>How long after a loop ended on its own (a bug, an error it did not survive) it is started again.</summary>
    protected virtual TimeSpan RestartDelay => TimeSpan.FromSeconds(30);

    /// <summary>The account's loop: runs until <paramref name="stopping"/> is cancelled, handling its own errors.</summary>
    protected abstract Task RunAccountAsync(ChannelAccount account, TSettings settings, CancellationToken stopping);

    /// <summary>Whether the account's loop is running on this node (tests watch it).</summary>
    public bool IsRunning(string accountId)
    {
        lock (_running)
            return _running.ContainsKey(accountId);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        accounts.Changed += OnChanged;
        try
        {
            // The directory may still be loading: its Changed events then name the accounts, and this pass the rest.
            foreach (var account in accounts.EnabledOf(kind))
                _changed.Writer.TryWrite(account.Id);
            await foreach (var id in _changed.Reader.ReadAllAsync(stoppingToken))
                await ReconcileAsync(id);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            accounts.Changed -= OnChanged;
            List<Running> all;
            lock (_running)
            {
                all = [.. _running.Values];
                _running.Clear();
            }
            await Task.WhenAll(all.Select(StopAsync));
        }
    }

    private void OnChanged(ChannelAccountChange change)
    {
        if (change.Kind == kind)
            _changed.Writer.TryWrite(change.Id);
    }

    private async Task ReconcileAsync(string id)
    {
        var account = accounts.Find(id);
        var settings = account is { Enabled: true } && account.Kind == kind ? account.SettingsAs<TSettings>() : null;
        Running? current;
        lock (_running)
            current = _running.GetValueOrDefault(id);
        // A loop that ended on its own is started again.
        if (current is not null && current.Settings == settings && !current.Loop.IsCompleted)
            return;
        if (current is not null)
        {
            lock (_running)
                _running.Remove(id);
            await StopAsync(current);
            logger.LogInformation("{Kind} channel {Channel}: loop stopped", kind, id);
        }
        if (settings is null)
            return;
        var stop = new CancellationTokenSource();
        var loop = Task.Run(() => RunAccountAsync(account!, settings, stop.Token));
        _ = loop.ContinueWith(async ended =>
        {
            if (stop.IsCancellationRequested)
                return;
            if (ended.IsFaulted)
                logger.LogError(ended.Exception, "{Kind} channel {Channel}: loop failed; starting it again", kind, id);
            // Not at once: a loop that fails at its start must not spin.
            await Task.Delay(RestartDelay);
            _changed.Writer.TryWrite(id);
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        lock (_running)
            _running[id] = new Running(id, settings, stop, loop);
        logger.LogInformation("{Kind} channel {Channel}: loop started", kind, id);
    }

    private async Task StopAsync(Running running)
    {
        await running.Stop.CancelAsync();
        try
        {
            // A loop stuck in a call that ignores cancellation must not hold up the others or the host's shutdown.
            await running.Loop.WaitAsync(StopTimeout);
        }
        catch (TimeoutException)
        {
            logger.LogWarning("{Kind} channel {Channel}: loop did not stop within {Timeout}; left to finish on its own", kind, running.AccountId, StopTimeout);
            return;
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "{Kind} channel {Channel}: loop ended with an error", kind, running.AccountId);
        }
        running.Stop.Dispose();
    }
}
