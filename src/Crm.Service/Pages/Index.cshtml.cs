using Crm.Service.Auth;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages;

/// <summary>The front door: agents go to their queues; anyone else signed in sees why they have nothing to work.</summary>
public sealed class IndexModel : PageModel
{
    public IActionResult OnGet() =>
        User.IsInRole(ConsoleRoles.Agent) || User.IsInRole(ConsoleRoles.Supervisor) ? Redirect("/Queues") : Page();
}
