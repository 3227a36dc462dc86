using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Email;

/// <summary>
/// Keeps exactly one <see cref="ImapMailboxReader"/> per enabled email account running on this node (see
/// <see cref="AccountLoopSupervisor{TSettings}"/>: started with the host, and started, restarted or stopped when
/// <see cref="IChannelAccounts.Changed"/> says an account was created, changed or disabled, without a restart).
/// </summary>
/// <remarks>Embedded mode runs one node, so one reader per account in the deployment; cluster mode needs a lease per
/// account (a grain) before a node starts a reader.</remarks>
internal sealed class ImapMailboxSupervisor(
    IChannelAccounts accounts,
    IServiceProvider services,
    IMailboxStateStore state,
    IChannelHealth health,
    IOptions<EmailChannelOptions> options,
    ILoggerFactory logs) : AccountLoopSupervisor<EmailChannelSettings>(accounts, ChannelKind.Email, logs.CreateLogger<ImapMailboxSupervisor>())
{
    private readonly IChannelAccounts _accounts = accounts;

    protected override TimeSpan RestartDelay => options.Value.MaxReconnectDelay;

    protected override Task RunAccountAsync(ChannelAccount account, EmailChannelSettings settings, CancellationToken stopping) =>
        new ImapMailboxReader(account.Id, _accounts, services.GetRequiredService<EmailIngest>(), state, health, options.Value, logs.CreateLogger<ImapMailboxReader>())
            .RunAsync(stopping);
}
