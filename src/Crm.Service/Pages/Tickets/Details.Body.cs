using Crm.Service.AgentConsole;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Tickets;

/// <summary>A message's HTML body, shown in its own sandboxed frame (no scripts), with the email's inline images.</summary>
public sealed partial class DetailsModel
{
    /// <summary>The HTML of one message of this ticket as a frame document: its <c>cid:</c> images point at
    /// <see cref="OnGetInlineAsync"/> for that same message's attachments; remote images load only with
    /// <paramref name="remote"/> (the agent's "Show remote images" on that message), never by default.</summary>
    public async Task<IActionResult> OnGetBodyAsync(Guid id, bool remote, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var html = await db.Messages.AsNoTracking().Where(m => m.Id == id && m.TicketNumber == Number).Select(m => m.Html).FirstOrDefaultAsync(cancellationToken);
        if (string.IsNullOrEmpty(html))
            return NotFound();
        IReadOnlyDictionary<string, Guid> inline = new Dictionary<string, Guid>();
        if (MessageBodyView.HasCidReferences(html))
        {
            var attachments = (await db.Attachments.AsNoTracking().Where(a => a.MessageId == id).Select(a => new { a.Id, a.Sha256, a.ContentType }).ToListAsync(cancellationToken))
                .Select(a => (a.Id, a.Sha256, a.ContentType)).ToList();
            var raw = await db.RawSources.AsNoTracking().Where(r => r.MessageId == id).FirstOrDefaultAsync(cancellationToken);
            // Content-IDs live only in the raw email (message/rfc822): other channels have no cid: parts.
            if (attachments.Count > 0 && raw is { ContentType: "message/rfc822" }
                && (raw.Content is { } bytes ? new MemoryStream(bytes) : raw.BlobSha256 is { } hash ? blobs.Open(hash) : null) is { } stream)
            {
                await using (stream)
                    inline = MessageBodyView.InlineImages(stream, attachments);
            }
        }
        var headers = Response.Headers;
        headers.ContentSecurityPolicy = MessageBodyView.ContentSecurityPolicy($"{Request.Scheme}://{Request.Host}", Number, remote);
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-store";
        // The ticket page frames it (the console's other pages are never framed).
        HttpContext.Items[AgentConsoleExtensions.FrameableByConsole] = true;
        return Content(MessageBodyView.Render(html, Number, inline, remote, Request.Host.Value), "text/html; charset=utf-8");
    }

    /// <summary>An image attachment of this ticket for an &lt;img&gt; in a body frame: served with its sniffed image
    /// type (never SVG or anything else, which stay downloads only), nosniff and a sandbox policy.</summary>
    public async Task<IActionResult> OnGetInlineAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var attachment = await db.Attachments.AsNoTracking()
            .Where(a => a.Id == id && db.Messages.Any(m => m.Id == a.MessageId && m.TicketNumber == Number))
            .FirstOrDefaultAsync(cancellationToken);
        if (attachment is null || !MessageBodyView.InlineImageTypes.Contains(attachment.ContentType) || blobs.Open(attachment.Sha256) is not { } stream)
            return NotFound();
        Response.Headers.XContentTypeOptions = "nosniff";
        Response.Headers.ContentSecurityPolicy = "default-src 'none'; sandbox";
        // Not kept in the browser: an agent who loses access to the ticket, or a shared workstation, must not show it (review RC8).
        Response.Headers.CacheControl = "no-store";
        return File(stream, attachment.ContentType);
    }
}
