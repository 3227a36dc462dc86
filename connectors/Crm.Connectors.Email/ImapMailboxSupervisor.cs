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
/// <remarks>Exactly one reader per mailbox in the cluster: a node runs an account's reader only while it holds the
/// connector lease "email-reader:{account}" (<see cref="ConnectorLeases"/>); another node takes over when it stops or
/// dies. A batch handed off but not yet acknowledged when the lease is lost is read again by the next holder, and the
/// hand-off answers it as a duplicate.</remarks>
internal sealed class ImapMailboxSupervisor(
    IChannelAccounts accounts,
    IServiceProvider services,
    IMailboxStateStore state,
    IChannelHealth health,
    IOptions<EmailChannelOptions> options,
    ConnectorLeases leases,
    ILoggerFactory logs) : AccountLoopSupervisor<EmailChannelSettings>(accounts, ChannelKind.Email, logs.CreateLogger<ImapMailboxSupervisor>())
{
    private readonly IChannelAccounts _accounts = accounts;

    protected override TimeSpan RestartDelay => options.Value.MaxReconnectDelay;

    /// <summary>The lease key of an account's reader: prefixed, so it never collides with another kind of work on the same account id.</summary>
    public static string LeaseKey(string accountId) => "email-reader:" + accountId;

    protected override Task RunAccountAsync(ChannelAccount account, EmailChannelSettings settings, CancellationToken stopping) =>
        leases.RunWhileHeldAsync(LeaseKey(account.Id), held =>
            new ImapMailboxReader(account.Id, _accounts, services.GetRequiredService<EmailIngest>(), state, health, options.Value, logs.CreateLogger<ImapMailboxReader>())
                .RunAsync(held), stopping);
}
