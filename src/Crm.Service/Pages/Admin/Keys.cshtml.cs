using System.ComponentModel.DataAnnotations;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Admin;

/// <summary>Every person's API keys (admins only): create one for a person (shown once, never more than the person's
/// roles allow), list, revoke. System keys made through the admin API show with no owner.</summary>
public sealed class KeysModel(IDbContextFactory<CrmDbContext> contexts, UserManager<IdentityUser> users, ApiKeyDirectory keys, PersonalApiKeys personalKeys) : PageModel
{
    public sealed record KeyRow(Guid Id, string Name, string Role, string? Owner, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

    public IReadOnlyList<KeyRow> Keys { get; private set; } = [];

    public string? CreatedKey { get; private set; }

    [BindProperty, EmailAddress, StringLength(256)] public string? Person { get; set; }
    [BindProperty, StringLength(PersonalApiKeys.MaxLabelLength)] public string? KeyLabel { get; set; }
    [BindProperty] public string? KeyRole { get; set; }
    [BindProperty] public Guid? RevokeId { get; set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        if (ModelState.IsValid)
        {
            if (Person is null || await users.FindByEmailAsync(Person) is not { } owner)
                ModelState.AddModelError(nameof(Person), "No person signs in with this email.");
            else
            {
                var (_, key, error) = await personalKeys.CreateAsync(owner, await users.GetRolesAsync(owner), KeyLabel, KeyRole, cancellationToken);
                if (error is null)
                {
                    CreatedKey = key;
                    Response.Headers.CacheControl = "no-store";
                    await LoadAsync(cancellationToken);
                    return Page();
                }
                ModelState.AddModelError(nameof(KeyLabel), error);
            }
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostRevokeAsync(CancellationToken cancellationToken)
    {
        if (RevokeId is { } id)
            await keys.RevokeAsync(id, cancellationToken);
        return Redirect("/Admin/Keys");
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        Keys = await db.ApiKeys.AsNoTracking().OrderByDescending(k => k.CreatedAt).Take(500)
            .Select(k => new KeyRow(k.Id, k.Name, k.Role, db.Users.Where(u => u.Id == k.OwnerId).Select(u => u.Email).FirstOrDefault(), k.CreatedAt, k.RevokedAt))
            .ToListAsync(cancellationToken);
    }
}
