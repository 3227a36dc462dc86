using System.ComponentModel.DataAnnotations;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Grains.Records;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Localization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Profile;

/// <summary>The signed-in person's own settings: presence, language, and their API keys (create, shown once; list; revoke).</summary>
public sealed partial class IndexModel(UserManager<IdentityUser> users, ApiKeyDirectory keys, PersonalApiKeys personalKeys, AgentPresence presence) : PageModel
{
    public static readonly string[] Languages = ["en", "zh-CN"];

    public IReadOnlyList<ApiKeyRecord> Keys { get; private set; } = [];

    public IReadOnlyList<string> KeyRoles { get; private set; } = [];

    /// <summary>Set only in the answer that created a key: it is shown this once.</summary>
    public string? CreatedKey { get; private set; }

    public PresenceStatus Presence { get; private set; }

    [BindProperty, StringLength(PersonalApiKeys.MaxLabelLength)] public string? KeyLabel { get; set; }
    [BindProperty] public string? KeyRole { get; set; }
    [BindProperty] public Guid? RevokeId { get; set; }
    [BindProperty] public string? Language { get; set; }
    [BindProperty] public PresenceStatus? NewPresence { get; set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostCreateKeyAsync(CancellationToken cancellationToken)
    {
        var me = await users.GetUserAsync(User);
        if (me is null)
            return Challenge();
        if (ModelState.IsValid)
        {
            var (_, key, error) = await personalKeys.CreateAsync(me, await users.GetRolesAsync(me), KeyLabel, KeyRole, cancellationToken);
            if (error is null)
            {
                CreatedKey = key;
                // The page carries a secret: never cached, never stored by the browser's history cache.
                Response.Headers.CacheControl = "no-store";
                KeyLabel = null;
                await LoadAsync(cancellationToken);
                return Page();
            }
            ModelState.AddModelError(nameof(KeyLabel), error);
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostRevokeKeyAsync(CancellationToken cancellationToken)
    {
        // Only one's own key: another person's id revokes nothing.
        if (RevokeId is not { } id || !await keys.RevokeAsync(id, TicketAccess.UserId(User), cancellationToken))
        {
            ModelState.AddModelError("", "No such active key of yours.");
            Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
            await LoadAsync(cancellationToken);
            return Page();
        }
        return Redirect("/Profile");
    }

    public IActionResult OnPostLanguage(string? returnUrl)
    {
        if (Language is null || !Languages.Contains(Language))
            return BadRequest();
        Response.Cookies.Append("crm.culture", CookieRequestCultureProvider.MakeCookieValue(new RequestCulture(Language)), new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = Request.IsHttps,
            IsEssential = true,
            MaxAge = TimeSpan.FromDays(365),
        });
        return Redirect(Url.IsLocalUrl(returnUrl) ? returnUrl! : "/Profile");
    }

    public async Task<IActionResult> OnPostPresenceAsync(CancellationToken cancellationToken)
    {
        if (NewPresence is not { } status || !Enum.IsDefined(status))
            return BadRequest();
        await presence.SetStatusAsync(TicketAccess.UserId(User), User.Identity!.Name!, status, cancellationToken);
        return Redirect("/Profile");
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var id = TicketAccess.UserId(User);
        Keys = await keys.OfOwnerAsync(id, cancellationToken);
        KeyRoles = PersonalApiKeys.RolesFor(User);
        Presence = presence.ChosenStatus(id);
        Notifications = await NotificationStore.GetAsync(id, cancellationToken);
    }
}
