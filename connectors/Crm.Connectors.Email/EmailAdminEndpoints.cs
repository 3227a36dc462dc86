using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Crm.Connectors.Email;

/// <summary>
/// The admin API of mailboxes: the quarantine of an account (list, raw source, retry, delete) and the mailbox state
/// (last mail received, cursors). Every route needs the admin policy; the quarantine holds strangers' raw bytes.
/// </summary>
public static class EmailAdminEndpoints
{
    public const int MaxPageSize = 200;

    /// <summary>Maps the routes under /api/v1/admin/channels/{id}, guarded by <paramref name="adminPolicy"/> (and, when
    /// given, the admin API's <paramref name="rateLimitPolicy"/>).</summary>
    public static IEndpointRouteBuilder MapEmailAdminApi(this IEndpointRouteBuilder endpoints, string adminPolicy, string? rateLimitPolicy = null)
    {
        var channel = endpoints.MapGroup("/api/v1/admin/channels/{id}").RequireAuthorization(adminPolicy);
        if (rateLimitPolicy is not null)
            channel.RequireRateLimiting(rateLimitPolicy);
        channel.MapGet("/quarantine", ListAsync);
        channel.MapGet("/quarantine/{qid:guid}/raw", RawAsync);
        channel.MapPost("/quarantine/{qid:guid}/retry", RetryAsync);
        channel.MapDelete("/quarantine/{qid:guid}", DeleteAsync);
        channel.MapGet("/mailbox", MailboxAsync);
        return endpoints;
    }

    public sealed record QuarantineItem(Guid Id, string Folder, uint Uid, string Reason, DateTimeOffset ReceivedAt, long Size);

    public sealed record QuarantinePage(int Total, int Offset, int Limit, IReadOnlyList<QuarantineItem> Items);

    public sealed record RetryResult(string Outcome, Guid MessageId, long TicketNumber, bool Duplicate);

    public sealed record MailboxView(string Id, DateTimeOffset? LastMailReceivedAt, int Quarantined, IReadOnlyList<MailboxFolderState> Folders);

    internal static async Task<Results<Ok<QuarantinePage>, ProblemHttpResult>> ListAsync(
        string id, IChannelAccounts accounts, IMailboxAdminStore store, int? offset, int? limit, CancellationToken cancellationToken)
    {
        if (accounts.Find(id) is null)
            return NoChannel(id);
        if (offset is < 0)
            return Problems.Invalid("offset", "offset must be 0 or more.");
        if (limit is < 1 or > MaxPageSize)
            return Problems.Invalid("limit", $"limit must be between 1 and {MaxPageSize}.");
        var (items, total) = await store.ListQuarantineAsync(id, offset ?? 0, limit ?? 50, cancellationToken);
        return TypedResults.Ok(new QuarantinePage(total, offset ?? 0, limit ?? 50,
            [.. items.Select(q => new QuarantineItem(q.Id, q.Folder, q.Uid, q.Reason, q.At, q.Length))]));
    }

    /// <summary>The kept bytes as a download: never rendered by the browser (attachment, nosniff), since a stranger wrote them.</summary>
    internal static async Task<Results<FileContentHttpResult, ProblemHttpResult>> RawAsync(
        string id, Guid qid, IChannelAccounts accounts, IMailboxAdminStore store, HttpContext http, CancellationToken cancellationToken)
    {
        if (accounts.Find(id) is not { } account)
            return NoChannel(id);
        if (await store.GetQuarantinedAsync(id, qid, cancellationToken) is not { } kept)
            return NoEntry(id, qid);
        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Response.Headers.ContentSecurityPolicy = "default-src 'none'; sandbox";
        var email = account.Kind == ChannelKind.Email;
        return TypedResults.File(kept.RawSource, email ? "message/rfc822" : "application/octet-stream", $"quarantine-{qid:N}.{(email ? "eml" : "bin")}");
    }

    /// <summary>
    /// Parses the kept mail again and hands it off, as the reader would (useful after a fix, or when the refusal was
    /// about a state that has changed). Stored → the entry is released (removed) and the message named; still refused →
    /// 422 with the reason, the entry kept. Idempotent: the hand-off recognises a mail it stored already (Duplicate),
    /// and a released entry is gone (404).
    /// </summary>
    internal static async Task<Results<Ok<RetryResult>, ProblemHttpResult>> RetryAsync(
        string id, Guid qid, IChannelAccounts accounts, IMailboxAdminStore store, EmailIngest ingest, CancellationToken cancellationToken)
    {
        if (accounts.Find(id) is not { } account)
            return NoChannel(id);
        if (account.Kind != ChannelKind.Email)
            return Problems.Of(ProblemKind.Conflict, $"Channel '{id}' is of kind {account.Kind}; only email quarantine can be retried. Download or delete the entry instead.", "id");
        if (await store.GetQuarantinedAsync(id, qid, cancellationToken) is not { } kept)
            return NoEntry(id, qid);
        MailOutcome outcome;
        try
        {
            outcome = await ingest.ProcessAsync(account, kept.Entry.Folder, kept.Entry.UidValidity, kept.Entry.Uid, kept.RawSource, cancellationToken);
        }
        catch (DomainException ex)
        {
            // About the channel (disabled or deleted meanwhile): nothing stored, the entry stays.
            return Problems.From(ex);
        }
        if (outcome is MailOutcome.Stored { Result: var result })
        {
            await store.DeleteQuarantinedAsync(id, qid, cancellationToken);
            return TypedResults.Ok(new RetryResult("stored", result.MessageId, result.TicketNumber, result.Duplicate));
        }
        // Deleted or pruned while the retry ran: the entry is gone (a tombstone keeps the mail from coming back under a new id).
        if (await store.GetQuarantinedAsync(id, qid, cancellationToken) is null)
            return NoEntry(id, qid);
        return Problems.Of(ProblemKind.Invalid, $"Still refused: {((MailOutcome.Quarantined)outcome).Reason} The entry is kept; delete it if it is not wanted.", "qid");
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, Guid qid, IChannelAccounts accounts, IMailboxAdminStore store, CancellationToken cancellationToken)
    {
        if (accounts.Find(id) is null)
            return NoChannel(id);
        return await store.DeleteQuarantinedAsync(id, qid, cancellationToken) ? TypedResults.NoContent() : NoEntry(id, qid);
    }

    /// <summary>The mailbox side of an account's health: when mail last came in (the cursor last moved), each folder's
    /// cursor, and how much is in quarantine. Connection health (lastSuccessAt, lastError) is on GET …/channels/{id}.</summary>
    internal static async Task<Results<Ok<MailboxView>, ProblemHttpResult>> MailboxAsync(
        string id, IChannelAccounts accounts, IMailboxAdminStore store, CancellationToken cancellationToken)
    {
        if (accounts.Find(id) is null)
            return NoChannel(id);
        var folders = await store.FoldersAsync(id, cancellationToken);
        var (_, quarantined) = await store.ListQuarantineAsync(id, 0, 1, cancellationToken);
        return TypedResults.Ok(new MailboxView(id, folders.Count == 0 ? null : folders.Max(f => f.UpdatedAt), quarantined, folders));
    }

    private static ProblemHttpResult NoChannel(string id) => Problems.NotFound("id", $"No channel '{id}'.");

    private static ProblemHttpResult NoEntry(string id, Guid qid) =>
        Problems.NotFound("qid", $"Channel '{id}' holds no quarantined message {qid} (it may have been retried, deleted or pruned).");
}
