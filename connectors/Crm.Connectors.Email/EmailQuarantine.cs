using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;

namespace Crm.Connectors.Email;

/// <summary>What a retry of a quarantined mail came to (see <see cref="EmailQuarantine.RetryAsync"/>).</summary>
public sealed record QuarantineRetryResult(bool Found, bool Stored, string Message, long? TicketNumber = null);

/// <summary>
/// Retrying a quarantined mail for the console's admin page: parse and hand it off again as the reader would (the same
/// rules as POST …/quarantine/{qid}/retry). Stored → the entry is released; still refused → the entry stays with the
/// reason; deleted or pruned meanwhile → not found.
/// </summary>
public sealed class EmailQuarantine(IChannelAccounts accounts, IMailboxAdminStore store, IServiceProvider services)
{
    public async Task<QuarantineRetryResult> RetryAsync(string accountId, Guid qid, CancellationToken cancellationToken = default)
    {
        if (accounts.Find(accountId) is not { Kind: ChannelKind.Email } account)
            return new(false, false, $"No email channel '{accountId}'.");
        if (await store.GetQuarantinedAsync(accountId, qid, cancellationToken) is not { } kept)
            return new(false, false, $"No quarantined mail {qid} (it may have been retried, deleted or pruned).");
        var ingest = (EmailIngest)services.GetService(typeof(EmailIngest))!;
        MailOutcome outcome;
        try
        {
            outcome = await ingest.ProcessAsync(account, kept.Entry.Folder, kept.Entry.UidValidity, kept.Entry.Uid, kept.RawSource, cancellationToken);
        }
        catch (DomainException ex)
        {
            return new(true, false, ex.Message);
        }
        if (outcome is MailOutcome.Stored { Result: var result })
        {
            await store.DeleteQuarantinedAsync(accountId, qid, cancellationToken);
            return new(true, true, result.Duplicate ? $"Already stored as a message of ticket #{result.TicketNumber}." : $"Stored in ticket #{result.TicketNumber}.", result.TicketNumber);
        }
        if (await store.GetQuarantinedAsync(accountId, qid, cancellationToken) is null)
            return new(false, false, $"No quarantined mail {qid} (deleted or pruned while it was retried).");
        return new(true, false, $"Still refused: {((MailOutcome.Quarantined)outcome).Reason}");
    }
}
