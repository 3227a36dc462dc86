using Crm.Service.Auth;
using Crm.Service.Infrastructure.Documents;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Customers;

/// <summary>Documents attached to the customer: upload, list, download (never rendered in the console's origin), delete.</summary>
public sealed partial class DetailsModel
{
    public IReadOnlyList<CustomerDocumentRecord> Documents { get; private set; } = [];

    [BindProperty] public IFormFile? DocumentFile { get; set; }
    [BindProperty] public Guid? DocumentId { get; set; }

    private CustomerDocumentStore DocumentStore => HttpContext.RequestServices.GetRequiredService<CustomerDocumentStore>();

    public long DocumentMaxBytes => DocumentStore.Limits.MaxBytes;

    /// <summary>False when the documents panel is hidden from this person (see <see cref="CanSeeDocumentsAsync"/>).</summary>
    public bool DocumentsVisible { get; private set; } = true;

    /// <summary>
    /// Documents (contracts, invoices) follow the customer's tickets (reviews CT3, CS2): an Agent does not see them if ANY
    /// ticket of the customer is in a restricted team they are not in, counting the tickets of customers merged into this
    /// one and the tickets merged into those. A later unrestricted ticket (a new email in triage) or a customer merge
    /// does not open them up. Supervisors and Admins see every customer's documents. Read per request, like team membership.
    /// </summary>
    private async Task<bool> CanSeeDocumentsAsync(CancellationToken cancellationToken)
    {
        var hidden = await access.HiddenTeamsAsync(User, cancellationToken);
        if (hidden.Count == 0)
            return true;
        await using var db = await HttpContext.RequestServices.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync(cancellationToken);
        // This customer and every customer merged into it, however many merges deep.
        var customerIds = new HashSet<Guid> { Id };
        for (var frontier = new List<Guid> { Id }; frontier.Count > 0 && customerIds.Count < 1000;)
        {
            var from = frontier;
            frontier = [.. (await db.Customers.AsNoTracking().Where(c => c.MergedInto != null && from.Contains(c.MergedInto.Value))
                .Select(c => c.Id).ToListAsync(cancellationToken)).Where(customerIds.Add)];
        }
        var ids = customerIds.ToList();
        var numbers = await db.Tickets.AsNoTracking().Where(t => ids.Contains(t.CustomerId)).Select(t => t.Number)
            .Union(db.Conversations.AsNoTracking().Where(c => ids.Contains(c.CustomerId)).Select(c => c.TicketNumber))
            .ToListAsync(cancellationToken);
        var restricted = hidden.ToList();
        return !await db.Tickets.AsNoTracking().AnyAsync(t => t.Team != null && restricted.Contains(t.Team)
            && (numbers.Contains(t.Number) || (t.MergedInto != null && numbers.Contains(t.MergedInto.Value))), cancellationToken);
    }

    public async Task<IActionResult> OnPostUploadDocumentAsync(CancellationToken cancellationToken)
    {
        if (!await CanSeeDocumentsAsync(cancellationToken))
            return NotFound();
        if (DocumentFile is not { Length: > 0 } file)
            ModelState.AddModelError(nameof(DocumentFile), "Choose a file to upload.");
        else if (file.Length > DocumentStore.Limits.MaxBytes)
            ModelState.AddModelError(nameof(DocumentFile), $"A document is at most {DocumentStore.Limits.MaxBytes / 1024} KB.");
        // An upload turn (the API's limit, review RA2) while the document is held in memory.
        using var turn = ModelState.IsValid ? await HttpContext.RequestServices.GetRequiredService<Crm.Service.Api.UploadGate>().EnterAsync(HttpContext) : null;
        if (turn is null && ModelState.IsValid)
            ModelState.AddModelError(nameof(DocumentFile), Crm.Service.Api.UploadGate.BusyMessage);
        return await ChangeAsync(async () =>
        {
            var customer = await customers.GetAsync(Id, cancellationToken) ?? throw new Contracts.DomainException(Contracts.DomainErrorKind.NotFound, "No such customer.", "id");
            // Read at most one byte past the limit: a client lying about the length is caught here.
            using var buffer = new MemoryStream();
            await using (var upload = DocumentFile!.OpenReadStream())
                await CopyAtMostAsync(upload, buffer, DocumentStore.Limits.MaxBytes + 1, cancellationToken);
            var (refusal, _) = await DocumentStore.AddAsync(customer.MergedInto ?? customer.Id, DocumentFile.FileName,
                buffer.GetBuffer().AsMemory(0, (int)buffer.Length), User.ConsoleActor(), cancellationToken);
            return refusal switch
            {
                DocumentRefusal.None => customer.MergedInto ?? customer.Id,
                DocumentRefusal.TooMany => throw new Contracts.DomainException($"A customer has at most {DocumentStore.Limits.MaxPerCustomer} documents; delete one first."),
                DocumentRefusal.TooLarge => throw new Contracts.DomainException($"A document is at most {DocumentStore.Limits.MaxBytes / 1024} KB."),
                _ => throw new Contracts.DomainException("The file is empty."),
            };
        }, cancellationToken);
    }

    private static async Task CopyAtMostAsync(Stream from, Stream to, long limit, CancellationToken cancellationToken)
    {
        var chunk = new byte[81920];
        long total = 0;
        int read;
        while (total < limit && (read = await from.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, limit - total)), cancellationToken)) > 0)
        {
            await to.WriteAsync(chunk.AsMemory(0, read), cancellationToken);
            total += read;
        }
    }

    /// <summary>A document as a download: attachment disposition, octet-stream, nosniff and a sandbox CSP, like attachments.</summary>
    public async Task<IActionResult> OnGetDocumentAsync(Guid document, CancellationToken cancellationToken)
    {
        if (!await CanSeeDocumentsAsync(cancellationToken))
            return NotFound();
        if (await DocumentStore.FindAsync(Id, document, cancellationToken) is not { } found || DocumentStore.Open(found) is not { } stream)
            return NotFound();
        Response.Headers.XContentTypeOptions = "nosniff";
        Response.Headers.ContentSecurityPolicy = "sandbox";
        return File(stream, "application/octet-stream", found.FileName);
    }

    /// <summary>Deletes a document: its uploader, a Supervisor or an Admin.</summary>
    public async Task<IActionResult> OnPostDeleteDocumentAsync(CancellationToken cancellationToken)
    {
        if (!await CanSeeDocumentsAsync(cancellationToken))
            return NotFound();
        if (DocumentId is not { } id || await DocumentStore.FindAsync(Id, id, cancellationToken) is not { } document)
            return NotFound();
        if (document.UploadedBy != User.ConsoleActor() && !Crm.Service.AgentConsole.TicketAccess.SeesEveryTeam(User))
            return StatusCode(StatusCodes.Status403Forbidden);
        await DocumentStore.DeleteAsync(Id, id, cancellationToken);
        return Redirect($"/Customers/{Id}");
    }
}
