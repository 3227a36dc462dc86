using System.ComponentModel.DataAnnotations;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Account;

public sealed class LoginModel(SignInManager<IdentityUser> signIn, FirstAdminSetup setup, ILogger<LoginModel> logger) : PageModel
{
    [BindProperty, Required, EmailAddress, StringLength(256)]
    public string Email { get; set; } = "";

    [BindProperty, Required, DataType(DataType.Password), StringLength(1024)]
    public string Password { get; set; } = "";

    public string? ReturnUrl { get; private set; }

    public bool SetupOpen { get; private set; }

    public async Task OnGetAsync(string? returnUrl, CancellationToken cancellationToken)
    {
        ReturnUrl = returnUrl;
        SetupOpen = await setup.IsOpenAsync(cancellationToken);
    }

    public async Task<IActionResult> OnPostAsync(string? returnUrl, CancellationToken cancellationToken)
    {
        ReturnUrl = returnUrl;
        if (!ModelState.IsValid)
            return Page();
        // Lockout counts failures per account, so guessing a password stops after Console:MaxFailedSignIns tries.
        var result = await signIn.PasswordSignInAsync(Email, Password, isPersistent: false, lockoutOnFailure: true);
        if (result.Succeeded)
            // Only a local address: a crafted ?returnUrl=https://evil.example must not turn sign-in into an open redirect.
            return LocalRedirect(Url.IsLocalUrl(returnUrl) ? returnUrl : "/");
        if (result.IsLockedOut)
        {
            logger.LogWarning("Sign-in refused: account {Email} is locked out", Email);
            ModelState.AddModelError("", "This account is locked after too many failed sign-ins. Try again later.");
        }
        else
        {
            // One message for an unknown account and a wrong password, so sign-in does not reveal who has an account.
            ModelState.AddModelError("", "Wrong email or password.");
        }
        SetupOpen = await setup.IsOpenAsync(cancellationToken);
        return Page();
    }
}
