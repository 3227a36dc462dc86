using Crm.Service.Auth;
using Crm.Service.Infrastructure.TicketLinks;
using Microsoft.AspNetCore.Mvc;

namespace Crm.Service.Pages.Tickets;

/// <summary>Linked tickets on the ticket page (kept apart from the reply and note forms).</summary>
public sealed partial class DetailsModel
{
    /// <summary>Tickets linked to this one that this person may see.</summary>
    public IReadOnlyList<TicketLinkView> Links { get; private set; } = [];

    [BindProperty] public long? LinkTarget { get; set; }
    [BindProperty] public string? LinkRelation { get; set; }
    [BindProperty] public long? UnlinkTarget { get; set; }

    private TicketLinkStore LinkStore => HttpContext.RequestServices.GetRequiredService<TicketLinkStore>();

    private async Task LoadLinksAndCallsAsync(IReadOnlyList<string> hiddenTeams, CancellationToken cancellationToken) =>
        Links = await LinkStore.ListAsync(Number, hiddenTeams, cancellationToken);

    /// <summary>The links list alone, for the live update of an open ticket page: a link made or removed on the other
    /// ticket writes a change for both, and this page redraws its list (review CR1).</summary>
    public async Task<IActionResult> OnGetLinksAsync(CancellationToken cancellationToken)
    {
        await LoadLinksAndCallsAsync(await access.HiddenTeamsAsync(User, cancellationToken), cancellationToken);
        return Partial("_LinkList", this);
    }

    /// <summary>Links this ticket to another one this person may see ("related", or "duplicate": this one duplicates it).
    /// A ticket they may not see is refused like one that does not exist; linking again changes nothing.</summary>
    public async Task<IActionResult> OnPostLinkAsync(CancellationToken cancellationToken)
    {
        var relation = string.IsNullOrEmpty(LinkRelation) ? TicketLinkRelations.Related : LinkRelation;
        if (!TicketLinkRelations.IsValid(relation))
            ModelState.AddModelError(nameof(LinkRelation), "Choose how the tickets relate.");
        if (LinkTarget is not { } target || target == Number || !await access.CanSeeTicketAsync(User, target, cancellationToken))
            ModelState.AddModelError(nameof(LinkTarget), "Enter the number of another ticket to link.");
        return await ChangeAsync(async () =>
        {
            if (await LinkStore.LinkAsync(Number, LinkTarget!.Value, relation, User.ConsoleActor(), cancellationToken) == LinkOutcome.Conflict)
                throw new Crm.Service.Contracts.DomainException($"#{Number} and #{LinkTarget} are already linked with another relation; unlink them first.");
        }, () => { }, cancellationToken);
    }

    public async Task<IActionResult> OnPostUnlinkAsync(CancellationToken cancellationToken)
    {
        if (UnlinkTarget is not { } target || !await access.CanSeeTicketAsync(User, target, cancellationToken))
            ModelState.AddModelError(nameof(UnlinkTarget), "Choose a linked ticket.");
        return await ChangeAsync(() => LinkStore.UnlinkAsync(Number, UnlinkTarget!.Value, User.ConsoleActor(), cancellationToken), () => { }, cancellationToken);
    }
}
