using System.ComponentModel.DataAnnotations;
using Crm.Service.AgentConsole;
using Crm.Service.Api;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Admin.Routing;

/// <summary>A team's assignment strategy and its members' skills and capacity (<c>/Admin/Routing/Assignment?team=</c>),
/// saved through <see cref="RoutingApi.PutAssignmentAsync"/> (the same checks and the same queue update as the API).</summary>
public sealed class AssignmentModel(TeamDirectory teams, IRoutingStore store, IGrainFactory grains, UserManager<IdentityUser> users, IAgentPresence presence)
    : PageModel
{
    /// <summary>One member, keyed by account id (a member without an email is a row too); the skills and capacity stay
    /// in the form whatever the tick, so unticking and saving keeps them (review CR9).</summary>
    public sealed class AgentRow
    {
        [StringLength(450)] public string? AccountId { get; set; }
        [StringLength(320)] public string? Email { get; set; }
        /// <summary>Takes work from the queue (unticked members are not assigned automatically).</summary>
        public bool Takes { get; set; }
        [StringLength(5_000)] public string? Skills { get; set; }
        public int? MaxOpenTickets { get; set; }
        /// <summary>Open web chats at once; empty: only the open tickets limit them.</summary>
        public int? MaxConcurrentChats { get; set; }
    }

    public sealed class AssignmentForm
    {
        public AssignmentPolicy Policy { get; set; }
        public TimeSpan? ReturnTicketsAfterOffline { get; set; }
        public List<AgentRow> Agents { get; set; } = [];
    }

    public IReadOnlyList<TeamView> Teams { get; private set; } = [];
    public TeamView? Team { get; private set; }
    public TeamQueueSnapshot? Queue { get; private set; }

    [BindProperty(SupportsGet = true, Name = "team"), StringLength(64)] public string? TeamId { get; set; }
    [BindProperty] public AssignmentForm Form { get; set; } = new();

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken);
        if (TeamId is null && Teams.Count > 0)
        {
            TeamId = Teams[0].Id;
            await LoadAsync(cancellationToken);
        }
        if (Team is null)
            return;
        var json = await store.GetAsync(RoutingKinds.TeamAssignment, Team.Id, cancellationToken);
        var settings = json is null ? new TeamAssignmentSettings() : RoutingJson.Read<TeamAssignmentSettings>(json);
        Form = new AssignmentForm { Policy = settings.Policy, ReturnTicketsAfterOffline = settings.ReturnTicketsAfterOffline };
        foreach (var id in Team.MemberIds)
        {
            if (await users.FindByIdAsync(id) is not { } user)
                continue;
            var agent = settings.Agents.FirstOrDefault(a => a.UserId == user.UserName);
            var kept = agent ?? settings.NotTakingWork.FirstOrDefault(a => a.UserId == user.UserName);
            Form.Agents.Add(new AgentRow
            {
                AccountId = user.Id, Email = user.Email ?? user.UserName, Takes = agent is not null,
                Skills = kept is null ? "" : FormLists.Join(kept.Skills), MaxOpenTickets = kept?.MaxOpenTickets ?? 20,
                MaxConcurrentChats = kept?.MaxConcurrentChats,
            });
        }
        Form.Agents.Sort((a, b) => StringComparer.OrdinalIgnoreCase.Compare(a.Email, b.Email));
    }

    /// <summary>Members who joined the team after the page was loaded keep what is stored for them (the form has no row
    /// for them); rows are sent by account id, ticked or not.</summary>
    private async Task<List<RoutingApi.AgentRequest>> RowsToSaveAsync(CancellationToken cancellationToken)
    {
        var rows = Form.Agents.Where(a => !string.IsNullOrEmpty(a.AccountId) || !string.IsNullOrEmpty(a.Email))
            .Select(a => new RoutingApi.AgentRequest(a.Email, FormLists.Split(a.Skills), a.MaxOpenTickets, NullIfEmpty(a.AccountId), a.Takes, a.MaxConcurrentChats)).ToList();
        if (Team is null)
            return rows;
        var json = await store.GetAsync(RoutingKinds.TeamAssignment, Team.Id, cancellationToken);
        var stored = json is null ? new TeamAssignmentSettings() : RoutingJson.Read<TeamAssignmentSettings>(json);
        var inForm = rows.Select(r => r.AccountId).Where(id => id is not null).ToHashSet(StringComparer.Ordinal);
        var emails = rows.Where(r => r.AccountId is null).Select(r => r.Email!.Trim()).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var id in Team.MemberIds.Where(id => !inForm.Contains(id)))
        {
            if (await users.FindByIdAsync(id) is not { UserName: { } userName } user || (user.Email is { } email && emails.Contains(email)))
                continue;
            if (stored.Agents.FirstOrDefault(a => a.UserId == userName) is { } taking)
                rows.Add(new RoutingApi.AgentRequest(null, taking.Skills, taking.MaxOpenTickets, id, true, taking.MaxConcurrentChats));
            else if (stored.NotTakingWork.FirstOrDefault(a => a.UserId == userName) is { } resting)
                rows.Add(new RoutingApi.AgentRequest(null, resting.Skills, resting.MaxOpenTickets, id, false, resting.MaxConcurrentChats));
        }
        return rows;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        if (ModelState.IsValid)
        {
            await LoadAsync(cancellationToken);
            var request = new RoutingApi.TeamAssignmentRequest(Form.Policy, await RowsToSaveAsync(cancellationToken), Form.ReturnTicketsAfterOffline);
            var result = (await RoutingApi.PutAssignmentAsync(TeamId ?? "", request, teams, store, grains, users, presence, cancellationToken)).Result;
            if (result is not ProblemHttpResult problem)
                return Redirect("/Admin/Routing/Assignment?team=" + Uri.EscapeDataString(TeamId!));
            var field = problem.ProblemDetails.Extensions.TryGetValue("field", out var f) ? f as string : null;
            ModelState.AddModelError(field == "id" ? "team" : FormLists.Key(nameof(Form), field), problem.ProblemDetails.Detail ?? "Refused.");
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Teams = await teams.ListAsync(cancellationToken);
        Team = Teams.FirstOrDefault(t => t.Id == TeamId);
        Queue = Team is null ? null : await grains.GetGrain<ITeamQueueGrain>(Team.Id).GetAsync();
    }
}
