using System.ComponentModel.DataAnnotations;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Admin;

/// <summary>
/// People and their roles (admins only): add a person, change their roles, disable (and re-enable) them. Every change
/// of access renews the person's security stamp (their sessions end at the next check, Console:SessionRecheckInterval),
/// closes their live connections on this node and revokes API keys their new roles no longer allow. An admin cannot
/// disable themselves or drop their own Admin role, so the console always keeps an admin who can undo a mistake.
/// </summary>
public sealed class IndexModel(UserManager<IdentityUser> users, AgentConnections connections, SignInThrottle throttle,
    IDbContextFactory<CrmDbContext> contexts, ApiKeyDirectory keys, ILogger<IndexModel> logger) : PageModel
{
    public sealed record Person(string Id, string Name, IReadOnlyList<string> Roles, bool LockedOut, bool Disabled);

    public IReadOnlyList<Person> People { get; private set; } = [];

    [BindProperty, Required, EmailAddress, StringLength(256)]
    public string Email { get; set; } = "";

    [BindProperty, Required, DataType(DataType.Password), StringLength(1024)]
    public string Password { get; set; } = "";

    [BindProperty]
    public List<string> Roles { get; set; } = [];

    [BindProperty]
    public string? PersonId { get; set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        if (Roles.Any(r => !ConsoleRoles.All.Contains(r)))
            ModelState.AddModelError(nameof(Roles), "Unknown role.");
        if (ModelState.IsValid)
        {
            var user = new IdentityUser { UserName = Email, Email = Email, EmailConfirmed = true };
            var created = await users.CreateAsync(user, Password);
            if (created.Succeeded && Roles.Count > 0)
                created = await users.AddToRolesAsync(user, Roles.Distinct());
            if (created.Succeeded)
                return Redirect("/Admin");
            foreach (var error in created.Errors)
                ModelState.AddModelError("", error.Description);
        }
        return await RefuseAsync(cancellationToken);
    }

    /// <summary>Sets the person's roles to exactly the ones ticked.</summary>
    public async Task<IActionResult> OnPostRolesAsync(CancellationToken cancellationToken)
    {
        ModelState.Clear();
        if (await PersonAsync() is not { } person)
            return NotFound();
        if (Roles.Any(r => !ConsoleRoles.All.Contains(r)))
            ModelState.AddModelError(nameof(Roles), "Unknown role.");
        else if (IsMe(person) && !Roles.Contains(ConsoleRoles.Admin))
            ModelState.AddModelError(nameof(Roles), "You cannot remove your own Admin role; another admin can.");
        else
        {
            var current = await users.GetRolesAsync(person);
            var result = await users.RemoveFromRolesAsync(person, current.Except(Roles));
            if (result.Succeeded)
                result = await users.AddToRolesAsync(person, Roles.Distinct().Except(current));
            if (result.Succeeded)
            {
                await AccessChangedAsync(person, PersonalApiKeys.RolesFor(Roles), cancellationToken);
                return Redirect("/Admin");
            }
            foreach (var error in result.Errors)
                ModelState.AddModelError("", error.Description);
        }
        return await RefuseAsync(cancellationToken);
    }

    /// <summary>Disables the person: no sign-in, sessions and live connections end, API keys revoked.</summary>
    public async Task<IActionResult> OnPostDisableAsync(CancellationToken cancellationToken)
    {
        ModelState.Clear();
        if (await PersonAsync() is not { } person)
            return NotFound();
        if (IsMe(person))
        {
            ModelState.AddModelError("", "You cannot disable yourself.");
            return await RefuseAsync(cancellationToken);
        }
        await users.SetLockoutEnabledAsync(person, true);
        await users.SetLockoutEndDateAsync(person, DateTimeOffset.MaxValue);
        await AccessChangedAsync(person, [], cancellationToken);
        return Redirect("/Admin");
    }

    /// <summary>Enables a disabled person again and clears failed sign-ins (also an "unlock").</summary>
    public async Task<IActionResult> OnPostEnableAsync(CancellationToken cancellationToken)
    {
        ModelState.Clear();
        if (await PersonAsync() is not { } person)
            return NotFound();
        await users.SetLockoutEndDateAsync(person, null);
        await users.ResetAccessFailedCountAsync(person);
        throttle.ResetAccount(person.Email ?? person.UserName ?? "");
        await users.UpdateSecurityStampAsync(person);
        return Redirect("/Admin");
    }

    private async Task AccessChangedAsync(IdentityUser person, IReadOnlyList<string> allowedKeyRoles, CancellationToken cancellationToken)
    {
        await users.UpdateSecurityStampAsync(person);
        var closed = connections.AbortAll(person.Id);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var revoke = await db.ApiKeys.AsNoTracking().Where(k => k.OwnerId == person.Id && k.RevokedAt == null && !allowedKeyRoles.Contains(k.Role))
            .Select(k => k.Id).ToListAsync(cancellationToken);
        foreach (var id in revoke)
            await keys.RevokeAsync(id, cancellationToken);
        logger.LogInformation("Access of {Person} changed by {Admin}: {Connections} live connections closed, {Keys} API keys revoked",
            person.Email, User.Identity!.Name, closed, revoke.Count);
    }

    private async Task<IdentityUser?> PersonAsync() => PersonId is null ? null : await users.FindByIdAsync(PersonId);

    private bool IsMe(IdentityUser person) => person.Id == TicketAccess.UserId(User);

    private async Task<IActionResult> RefuseAsync(CancellationToken cancellationToken)
    {
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var all = await users.Users.AsNoTracking().OrderBy(u => u.UserName).Take(500).ToListAsync(cancellationToken);
        var people = new List<Person>();
        foreach (var user in all)
            people.Add(new Person(user.Id, user.UserName ?? user.Id, [.. await users.GetRolesAsync(user)], await users.IsLockedOutAsync(user),
                user.LockoutEnd == DateTimeOffset.MaxValue));
        People = people;
    }
}
