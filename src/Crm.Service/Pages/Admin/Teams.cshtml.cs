using System.ComponentModel.DataAnnotations;
using Crm.Service.Api;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Admin;

/// <summary>Teams and their members (admins only); the same rules as <c>PUT /api/v1/admin/teams/{id}</c>.</summary>
public sealed class TeamsModel(TeamDirectory teams, UserManager<IdentityUser> users) : PageModel
{
    public sealed record TeamRow(TeamView Team, IReadOnlyList<string> Members);

    public IReadOnlyList<TeamRow> Teams { get; private set; } = [];

    [BindProperty, StringLength(64)] public string? TeamId { get; set; }
    [BindProperty, StringLength(TeamDirectory.MaxNameLength)] public string? Name { get; set; }
    [BindProperty] public bool Restricted { get; set; }
    /// <summary>Members' emails, one per line or separated by commas.</summary>
    [BindProperty, StringLength(100_000)] public string? Members { get; set; }

    public async Task OnGetAsync(string? edit, CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken);
        if (edit is not null && Teams.FirstOrDefault(t => t.Team.Id == edit) is { } row)
        {
            TeamId = row.Team.Id;
            Name = row.Team.Name;
            Restricted = row.Team.Restricted;
            Members = string.Join("\n", row.Members);
        }
    }

    public async Task<IActionResult> OnPostSaveAsync(CancellationToken cancellationToken)
    {
        if (ModelState.IsValid)
        {
            var emails = (Members ?? "").Split([',', '\n', '\r', ';', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var id = TeamId?.Trim() ?? "";
            var result = await TeamRules.CheckAsync(id, Name, emails, users);
            if (result.Error is { } error)
                ModelState.AddModelError(error.Field == "members" ? nameof(Members) : error.Field == "id" ? nameof(TeamId) : nameof(Name), error.Message);
            else
            {
                await teams.SaveAsync(id, Name!.Trim(), Restricted, result.MemberIds, cancellationToken);
                return Redirect("/Admin/Teams");
            }
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken cancellationToken)
    {
        if (TeamDirectory.IsValidId(TeamId))
            await teams.DeleteAsync(TeamId!, cancellationToken);
        return Redirect("/Admin/Teams");
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var rows = new List<TeamRow>();
        foreach (var team in await teams.ListAsync(cancellationToken))
        {
            var emails = new List<string>();
            foreach (var id in team.MemberIds)
                if (await users.FindByIdAsync(id) is { } user)
                    emails.Add(user.Email ?? user.UserName ?? id);
            rows.Add(new TeamRow(team, [.. emails.Order(StringComparer.OrdinalIgnoreCase)]));
        }
        Teams = rows;
    }
}
