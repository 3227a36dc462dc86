using System.Threading.Channels;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Email;

/// <summary>
/// Keeps exactly one <see cref="ImapMailboxReader"/> per enabled email account running on this node: started with the
/// host, and started, restarted or stopped when <see cref="IChannelAccounts.Changed"/> says an account was created,
/// changed or disabled, without a restart. The change handler only queues the account id; this loop does the rest.
/// </summary>
/// <remarks>Embedded mode runs one node, so one reader per account in the deployment; cluster mode needs a lease per
/// account (a grain) before a node starts a reader.</remarks>
internal sealed class ImapMailboxSupervisor(
    IChannelAccounts accounts,
    IServiceProvider services,
    IMailboxStateStore state,
    IChannelHealth health,
    IOptions<EmailChannelOptions> options,
    ILoggerFactory logs) : BackgroundService
{
    private readonly Channel<string> _changed = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, Running> _running = new(StringComparer.Ordinal);
    private readonly ILogger _logger = logs.CreateLogger<ImapMailboxSupervisor>();

    private sealed record Running(ImapMailboxReader Reader, EmailChannelSettings Settings, CancellationTokenSource Stop, Task Loop);

    /// <summary>The reader of an account while it runs (tests and the benchmark watch its progress).</summary>
    public ImapMailboxReader? ReaderOf(string accountId)
    {
        lock (_running)
            return _running.GetValueOrDefault(accountId)?.Reader;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        accounts.Changed += OnChanged;
        try
        {
            // The directory may still be loading: its Changed events then name the accounts, and this pass the rest.
            foreach (var account in accounts.EnabledOf(ChannelKind.Email))
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
            foreach (var running in all)
                await StopAsync(running);
        }
    }

    private void OnChanged(ChannelAccountChange change)
    {
        if (change.Kind == ChannelKind.Email)
            _changed.Writer.TryWrite(change.Id);
    }

    private async Task ReconcileAsync(string id)
    {
        var account = accounts.Find(id);
        var settings = account is { Enabled: true, Kind: ChannelKind.Email } ? account.SettingsAs<EmailChannelSettings>() : null;
        Running? current;
        lock (_running)
            current = _running.GetValueOrDefault(id);
        // A reader whose loop ended (it faulted: a bug, or an error its own handling did not survive) is started again.
        if (current is not null && current.Settings == settings && !current.Loop.IsCompleted)
            return;
        if (current is not null)
        {
            lock (_running)
                _running.Remove(id);
            await StopAsync(current);
            _logger.LogInformation("Mailbox {Channel}: reader stopped", id);
        }
        if (settings is null)
            return;
        var reader = new ImapMailboxReader(id, accounts, services.GetRequiredService<EmailIngest>(), state, health, options.Value, logs.CreateLogger<ImapMailboxReader>());
        var stop = new CancellationTokenSource();
        var loop = Task.Run(() => reader.RunAsync(stop.Token));
        _ = loop.ContinueWith(async ended =>
        {
            if (stop.IsCancellationRequested)
                return;
            if (ended.IsFaulted)
                _logger.LogError(ended.Exception, "Mailbox {Channel}: reader failed; starting it again", id);
            // Not at once: a reader that fails at its start must not spin.
            await Task.Delay(options.Value.MaxReconnectDelay);
            _changed.Writer.TryWrite(id);
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        lock (_running)
            _running[id] = new Running(reader, settings, stop, loop);
        _logger.LogInformation("Mailbox {Channel}: reader started for {Address}", id, settings.Address);
    }

    private async Task StopAsync(Running running)
    {
        await running.Stop.CancelAsync();
        try
        {
            // A reader stuck in a call that ignores cancellation must not hold up the others or the host's shutdown.
            await running.Loop.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("Mailbox {Channel}: reader did not stop within 10 s; left to finish on its own", running.Reader.AccountId);
            return;
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Mailbox {Channel}: reader ended with an error", running.Reader.AccountId);
        }
        running.Stop.Dispose();
    }
}
