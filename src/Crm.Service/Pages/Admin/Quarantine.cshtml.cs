using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Admin;

/// <summary>
/// Each mailbox's quarantine (mail that could not become a message: unparseable, a bounce, automatic, refused) for
/// admins (the /Admin folder is Admin only): reason, date, size; download the raw source; delete; retry. Posts carry
/// the anti-forgery token (Razor Pages checks it). The same operations as /api/v1/admin/channels/{id}/quarantine.
/// </summary>
public sealed class QuarantineModel(IDbContextFactory<CrmDbContext> contexts, IMailboxAdminStore store, EmailQuarantine quarantine) : PageModel
{
    public const int PageSize = 100;

    public sealed record Mailbox(string Id, string Name, bool Enabled, int Total, IReadOnlyList<QuarantineEntry> Entries);

    public IReadOnlyList<Mailbox> Mailboxes { get; private set; } = [];

    [TempData]
    public string? Status { get; set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var accounts = await db.ChannelAccounts.AsNoTracking().Where(c => c.Kind == ChannelKind.Email).OrderBy(c => c.Id)
            .Select(c => new { c.Id, c.Name, c.Enabled }).Take(200).ToListAsync(cancellationToken);
        var mailboxes = new List<Mailbox>(accounts.Count);
        foreach (var account in accounts)
        {
            var (items, total) = await store.ListQuarantineAsync(account.Id, 0, PageSize, cancellationToken);
            mailboxes.Add(new Mailbox(account.Id, account.Name, account.Enabled, total, items));
        }
        Mailboxes = mailboxes;
    }

    /// <summary>The raw source as a download, never rendered: a stranger's bytes.</summary>
    public async Task<IActionResult> OnGetRawAsync(string channel, Guid qid, CancellationToken cancellationToken)
    {
        if (await store.GetQuarantinedAsync(channel, qid, cancellationToken) is not { } kept)
            return NotFound();
        Response.Headers.XContentTypeOptions = "nosniff";
        Response.Headers.ContentSecurityPolicy = "default-src 'none'; sandbox";
        return File(kept.RawSource, "message/rfc822", $"quarantine-{qid:N}.eml");
    }

    public async Task<IActionResult> OnPostDeleteAsync(string channel, Guid qid, CancellationToken cancellationToken)
    {
        Status = await store.DeleteQuarantinedAsync(channel, qid, cancellationToken) ? $"Deleted {qid}." : $"No quarantined mail {qid} (already deleted or pruned).";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostRetryAsync(string channel, Guid qid, CancellationToken cancellationToken)
    {
        Status = (await quarantine.RetryAsync(channel, qid, cancellationToken)).Message;
        return RedirectToPage();
    }
}
