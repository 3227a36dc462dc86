using Crm.Service.Contracts;

namespace Crm.Connectors.Abstractions;

/// <summary>
/// A channel account as its connector sees it: settings typed and secrets in plain text, in memory only. The admin
/// API never shows <see cref="Secret"/> or the settings' secret fields; the store keeps them encrypted.
/// </summary>
public sealed record ChannelAccount(string Id, ChannelKind Kind, string Name, bool Enabled, string? Secret, IChannelSettings? Settings, DateTimeOffset UpdatedAt)
{
    /// <summary>The settings as the connector's own type; null when they are of another type or absent.</summary>
    public TSettings? SettingsAs<TSettings>() where TSettings : class, IChannelSettings => Settings as TSettings;

    /// <summary>Never prints the secret or the settings (which may hold secret fields): records end up in logs.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"Id = {Id}, Kind = {Kind}, Name = {Name}, Enabled = {Enabled}, UpdatedAt = {UpdatedAt:O}");
        return true;
    }
}

/// <summary>An account was created, changed or removed: <see cref="Before"/> is null for a new one, <see cref="After"/> for a removed one.</summary>
public sealed record ChannelAccountChange(ChannelAccount? Before, ChannelAccount? After)
{
    public string Id => (After ?? Before)!.Id;

    public ChannelKind Kind => (After ?? Before)!.Kind;
}

/// <summary>
/// The channel accounts of this deployment, in memory on every node: a lookup costs no query and no grain call, so an
/// unknown or forged account id costs nothing. Kept current from the change feed, and at once on the node where an
/// admin changed an account.
/// </summary>
public interface IChannelAccounts
{
    ChannelAccount? Find(string id);

    /// <summary>The enabled accounts of one kind, e.g. the mailboxes an email connector should watch.</summary>
    IReadOnlyList<ChannelAccount> EnabledOf(ChannelKind kind);

    /// <summary>Raised after the directory applied a change, on the thread that applied it; handlers must be quick
    /// and not throw (start or stop a mailbox loop, not connect to it).</summary>
    event Action<ChannelAccountChange>? Changed;
}

/// <summary>
/// Where connectors report how talking to their servers goes; admins see it in GET /api/v1/admin/channels/{id} as
/// lastSuccessAt, lastErrorAt and lastError. Cheap to call on every send: successes are forwarded at most every
/// <c>ChannelHealthReporter.SuccessInterval</c> per account, and a repeated error at most every few seconds.
/// </summary>
public interface IChannelHealth
{
    /// <summary>The account just reached its server (a webhook answered 2xx, a mailbox logged in, a poll returned).</summary>
    ValueTask ReportSuccessAsync(string channelAccountId, CancellationToken cancellationToken = default);

    /// <summary>The account failed to reach its server; <paramref name="error"/> is the server's own words (status line
    /// and body excerpt, SMTP reply, API error), shown to admins, never to agents.</summary>
    ValueTask ReportErrorAsync(string channelAccountId, string error, CancellationToken cancellationToken = default);
}

/// <summary>Whether an address belongs to one of our agents (a console user): an email connector takes mail an agent
/// forwarded as the original sender's. Optional: without a registration, only configured addresses count.</summary>
public interface IAgentAddresses
{
    Task<bool> IsAgentAsync(string emailAddress, CancellationToken cancellationToken = default);
}
