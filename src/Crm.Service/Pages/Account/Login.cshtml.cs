using System.ComponentModel.DataAnnotations;
using Crm.Service.Auth;
using Crm.Service.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Account;

public sealed class LoginModel(SignInManager<IdentityUser> signIn, FirstAdminSetup setup, SignInThrottle throttle, ILogger<LoginModel> logger) : PageModel
{
    /// <summary>The one answer to every refused sign-in (unknown account, wrong password, too many tries, disabled), so
    /// the form never tells a stranger whether an account exists.</summary>
    public const string Refused = "Wrong email or password. After 5 failed tries from one place, wait 15 minutes.";

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
        var address = ClientAddress.Of(HttpContext);
        var user = await signIn.UserManager.FindByEmailAsync(Email);
        if (throttle.IsBlocked(Email, address) || user is null)
        {
            // The same work as a real check (one password hash), so the answer's timing does not tell either.
            signIn.UserManager.PasswordHasher.HashPassword(user ?? new IdentityUser(), Password);
            if (user is not null)
                logger.LogWarning("Sign-in refused: too many failed tries for {Email} from {Address}", Email, address);
            else
                throttle.RecordFailure(Email, address);
            return await RefusedAsync(cancellationToken);
        }
        // Failures are counted per account and address (SignInThrottle), not account-wide: a stranger's guesses
        // must not lock the owner out. Identity's lockout still refuses an account an admin disabled.
        var result = await signIn.PasswordSignInAsync(user, Password, isPersistent: false, lockoutOnFailure: false);
        if (result.Succeeded)
        {
            throttle.Reset(Email, address);
            // Only a local address: a crafted ?returnUrl=https://evil.example must not turn sign-in into an open redirect.
            return LocalRedirect(Url.IsLocalUrl(returnUrl) ? returnUrl : "/");
        }
        if (result.IsLockedOut)
            logger.LogWarning("Sign-in refused: account {Email} is disabled", Email);
        else
            throttle.RecordFailure(Email, address);
        return await RefusedAsync(cancellationToken);
    }

    private async Task<IActionResult> RefusedAsync(CancellationToken cancellationToken)
    {
        ModelState.AddModelError("", Refused);
        SetupOpen = await setup.IsOpenAsync(cancellationToken);
        return Page();
    }
}
