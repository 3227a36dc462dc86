using System.ComponentModel.DataAnnotations;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Admin;

/// <summary>People and their roles (admins only).</summary>
public sealed class IndexModel(UserManager<IdentityUser> users) : PageModel
{
    public sealed record Person(string Id, string Name, IReadOnlyList<string> Roles, bool LockedOut);

    public IReadOnlyList<Person> People { get; private set; } = [];

    [BindProperty, Required, EmailAddress, StringLength(256)]
    public string Email { get; set; } = "";

    [BindProperty, Required, DataType(DataType.Password), StringLength(1024)]
    public string Password { get; set; } = "";

    [BindProperty]
    public List<string> Roles { get; set; } = [];

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
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var all = await users.Users.AsNoTracking().OrderBy(u => u.UserName).Take(500).ToListAsync(cancellationToken);
        var people = new List<Person>();
        foreach (var user in all)
            people.Add(new Person(user.Id, user.UserName ?? user.Id, [.. await users.GetRolesAsync(user)], await users.IsLockedOutAsync(user)));
        People = people;
    }
}
