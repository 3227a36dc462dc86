using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages;

/// <summary>One-time creation of the first admin. Once any account exists the page answers 404 to GET and POST alike.</summary>
public sealed class SetupModel(FirstAdminSetup setup, UserManager<IdentityUser> users, SignInManager<IdentityUser> signIn) : PageModel
{
    [BindProperty, Required, StringLength(200)]
    [Display(Name = "Setup code")]
    public string SetupCode { get; set; } = "";

    [BindProperty, Required, EmailAddress, StringLength(256)]
    public string Email { get; set; } = "";

    [BindProperty, Required, DataType(DataType.Password), StringLength(1024)]
    public string Password { get; set; } = "";

    [BindProperty, Required, DataType(DataType.Password), Compare(nameof(Password), ErrorMessage = "The passwords differ.")]
    [Display(Name = "Confirm password")]
    public string ConfirmPassword { get; set; } = "";

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken) =>
        await setup.IsOpenAsync(cancellationToken) ? Page() : NotFound();

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        if (!await setup.IsOpenAsync(cancellationToken))
            return NotFound();
        if (!ModelState.IsValid)
            return Page();
        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(SetupCode.Trim()), Encoding.UTF8.GetBytes(setup.SetupToken)))
        {
            ModelState.AddModelError(nameof(SetupCode), "Wrong setup code.");
            return Page();
        }
        var result = await setup.CreateAsync(Email, Password, cancellationToken);
        if (!result.Succeeded)
        {
            foreach (var error in result.Errors)
                ModelState.AddModelError(error.Code == "SetupClosed" ? "" : nameof(Password), error.Description);
            return Page();
        }
        await signIn.SignInAsync((await users.FindByEmailAsync(Email))!, isPersistent: false);
        return Redirect("/");
    }
}
