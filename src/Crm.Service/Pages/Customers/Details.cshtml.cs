using Crm.Service.Api;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Customers;

/// <summary>Customer 360 (first part): profile, identities on every channel, the customer's tickets; merge another
/// customer into this one and detach an identity, through the same grain calls as the REST API.</summary>
public sealed partial class DetailsModel(CustomerQueries customers, IGrainFactory grains, Crm.Service.AgentConsole.TicketAccess access,
    Crm.Service.Infrastructure.CustomerEvents.CustomerEventStore events) : PageModel
{
    /// <summary>External events (orders, sign-ups), newest first.</summary>
    public IReadOnlyList<Crm.Service.Infrastructure.CustomerEvents.CustomerEventView> Events { get; private set; } = [];

    [BindProperty, System.ComponentModel.DataAnnotations.StringLength(20_000)] public string? NotesText { get; set; }
    [BindProperty, System.ComponentModel.DataAnnotations.StringLength(4000)] public string? TagsText { get; set; }
    /// <summary>Custom fields, one "name = value" per line; a field left out is removed.</summary>
    [BindProperty, System.ComponentModel.DataAnnotations.StringLength(50_000)] public string? FieldsText { get; set; }

    /// <summary>Saves notes, tags and custom fields through the same grain call as PATCH /api/v1/customers/{id}.</summary>
    public async Task<IActionResult> OnPostProfileAsync(CancellationToken cancellationToken)
    {
        var fields = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var line in (FieldsText ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = line.IndexOf('=');
            if (eq <= 0)
            {
                ModelState.AddModelError(nameof(FieldsText), $"Write each custom field as name = value; '{(line.Length > 40 ? line[..40] + "…" : line)}' has no name.");
                break;
            }
            fields[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        return await ChangeAsync(async () =>
        {
            var current = await customers.GetAsync(Id, cancellationToken) ?? throw new DomainException(DomainErrorKind.NotFound, "No such customer.", "id");
            foreach (var removed in current.CustomFields.Keys.Where(k => !fields.ContainsKey(k)))
                fields[removed] = null;
            var tags = (TagsText ?? "").Split([',', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var request = new ChangeCustomerRequest(null, null, null, tags, NotesText?.Trim() ?? "", fields);
            request.CheckLimits();
            await grains.GetGrain<ICustomerGrain>(Id).UpdateProfileAsync(request.ToContract(), User.ConsoleActor(), cancellationToken);
            return Id;
        }, cancellationToken);
    }

    [FromRoute] public Guid Id { get; set; }

    public CustomerView Customer { get; private set; } = null!;

    public Page<TicketView> Tickets { get; private set; } = new([], null);

    [BindProperty] public Guid? MergeFrom { get; set; }

    [BindProperty] public string? Identity { get; set; }

    public async Task<IActionResult> OnGetAsync(string? cursor, CancellationToken cancellationToken) =>
        await LoadAsync(cursor, cancellationToken) ? Page() : NotFound();

    public async Task<IActionResult> OnPostMergeAsync(CancellationToken cancellationToken)
    {
        if (MergeFrom is not { } source || source == Id)
            ModelState.AddModelError(nameof(MergeFrom), "Enter the id of another customer to merge into this one.");
        return await ChangeAsync(async () =>
        {
            // Through the coordinator, which runs merges one at a time (two opposite merges cannot wait on each other).
            await grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(MergeFrom!.Value, Id, User.ConsoleActor(), cancellationToken);
            return Id;
        }, cancellationToken);
    }

    public async Task<IActionResult> OnPostDetachAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(Identity) || Identity.Length > AgentApi.MaxIdentityKeyLength)
            ModelState.AddModelError(nameof(Identity), "Choose an identity to detach.");
        return await ChangeAsync(async () =>
        {
            var identity = grains.GetGrain<IIdentityGrain>(Identity!);
            if (await identity.GetCustomerAsync() != Id)
                throw new DomainException(DomainErrorKind.NotFound, "This customer has no such identity.", "identity");
            return await identity.DetachAsync(User.ConsoleActor(), cancellationToken);
        }, cancellationToken);
    }

    private async Task<IActionResult> ChangeAsync(Func<Task<Guid>> change, CancellationToken cancellationToken)
    {
        if (ModelState.IsValid)
        {
            try
            {
                return Redirect($"/Customers/{await change()}");
            }
            catch (DomainException refused)
            {
                ModelState.AddModelError("", refused.Message);
            }
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        return await LoadAsync(null, cancellationToken) ? Page() : NotFound();
    }

    private async Task<bool> LoadAsync(string? cursor, CancellationToken cancellationToken)
    {
        if (await customers.GetAsync(Id, cancellationToken) is not { } customer)
            return false;
        Customer = customer;
        TicketCursor? after = cursor is not null && TicketCursor.TryDecode(cursor, out var decoded) ? decoded : null;
        Events = await events.LatestAsync(Id, 50, cancellationToken);
        DocumentsVisible = await CanSeeDocumentsAsync(cancellationToken);
        Documents = DocumentsVisible ? await DocumentStore.ListAsync(Id, cancellationToken) : [];
        NotesText ??= customer.Notes;
        TagsText ??= string.Join(", ", customer.Tags);
        FieldsText ??= string.Join("\n", customer.CustomFields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key} = {f.Value}"));
        Tickets = await customers.TicketsAsync(Id, after, 50, cancellationToken, await access.HiddenTeamsAsync(User, cancellationToken)) ?? new([], null);
        return true;
    }
}
