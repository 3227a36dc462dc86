using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Crm.Service.AgentConsole;
using Crm.Service.Api;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.ModelBinding;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages;

/// <summary>The "Record follow-up" form of the customer and ticket pages (<c>Shared/_RecordFollowUp.cshtml</c>): what it shows.</summary>
public sealed record FollowUpForm(string RequestId, string? How, string? At, string? Outcome, string? NextDue, string? Owner, string? Team, bool Open);

/// <summary>
/// The posted fields of the "Record follow-up" form (one class for both pages, bound by their own names), recorded
/// through <see cref="CustomerFollowUpApi.RecordEntryAsync"/>, the handler of <c>POST /api/v1/customers/{id}/follow-ups</c>:
/// the same checks and messages, a refusal shown at the field it names.
/// </summary>
public sealed class FollowUpFormFields
{
    public string? FollowUpRequestId { get; set; }
    [StringLength(10)] public string? FollowUpHow { get; set; }
    [StringLength(40)] public string? FollowUpAt { get; set; }
    [StringLength(CustomerFollowUpApi.MaxOutcomeLength + 100)] public string? FollowUpOutcome { get; set; }
    [StringLength(40)] public string? FollowUpNextDue { get; set; }
    [StringLength(300)] public string? FollowUpOwner { get; set; }
    [StringLength(300)] public string? FollowUpTeam { get; set; }

    /// <summary>The API's field names → this form's inputs; anything else (customer, ticket) goes to the form's summary.</summary>
    private static readonly Dictionary<string, string> Inputs = new(StringComparer.Ordinal)
    {
        ["how"] = nameof(FollowUpHow), ["at"] = nameof(FollowUpAt), ["outcome"] = nameof(FollowUpOutcome),
        ["nextDueAt"] = nameof(FollowUpNextDue), ["owner"] = nameof(FollowUpOwner), ["team"] = nameof(FollowUpTeam),
    };

    /// <summary>The model-state key of the form's summary (errors not about one input).</summary>
    public const string SummaryKey = "FollowUpForm";

    /// <summary>Records the entry on <paramref name="customer"/> (tied to <paramref name="ticket"/> on the ticket page).
    /// Returns true when it was recorded; otherwise the refusal is in <paramref name="state"/> at its field. A customer
    /// that does not exist is a refusal in the summary (the page itself answers 404 before that).</summary>
    public async Task<bool> RecordAsync(Guid customer, long? ticket, ClaimsPrincipal user, IServiceProvider services, ModelStateDictionary state,
        IReadOnlyCollection<string> hiddenTeams, CancellationToken cancellationToken)
    {
        FollowUpChannel? how = null;
        if (Enum.TryParse<FollowUpChannel>(FollowUpHow, ignoreCase: true, out var parsed) && !int.TryParse(FollowUpHow, out _) && Enum.IsDefined(parsed))
            how = parsed;
        else if (!string.IsNullOrWhiteSpace(FollowUpHow))
            state.AddModelError(nameof(FollowUpHow), "Choose how: phone, email, visit, chat or other.");
        if (!CallLog.TryParseTime(FollowUpAt, out var at))
            state.AddModelError(nameof(FollowUpAt), "Enter when the contact happened as yyyy-mm-dd hh:mm (UTC), or leave it empty for now.");
        if (!CallLog.TryParseTime(FollowUpNextDue, out var next))
            state.AddModelError(nameof(FollowUpNextDue), "Enter the next follow-up as yyyy-mm-dd hh:mm (UTC), or leave it empty for none.");
        if (!state.IsValid)
            return false;
        var contexts = services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
        // A team this person cannot see would hide the entry from them too (the log hides restricted teams' entries).
        if (!string.IsNullOrWhiteSpace(FollowUpTeam) && hiddenTeams.Count > 0)
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            var wanted = FollowUpTeam.Trim();
            var team = await db.Teams.AsNoTracking().Select(t => new { t.Id, t.Name }).ToListAsync(cancellationToken);
            if (team.FirstOrDefault(t => string.Equals(t.Id, wanted, StringComparison.OrdinalIgnoreCase) || string.Equals(t.Name, wanted, StringComparison.OrdinalIgnoreCase)) is { } found
                && hiddenTeams.Contains(found.Id))
            {
                state.AddModelError(nameof(FollowUpTeam), $"There is no team '{wanted}'; use a team id from /api/v1/admin/teams.");
                return false;
            }
        }
        var request = new CustomerFollowUpRequest(how, at, FollowUpOutcome, next, FollowUpOwner, FollowUpTeam, ticket);
        // The form's one-time id: a double-submitted form records one entry (as an API retry with the same Idempotency-Key).
        var key = $"console:{TicketAccess.UserId(user)}:follow-up:{(Guid.TryParse(FollowUpRequestId, out var id) && id != Guid.Empty ? id.ToString("N") : Guid.NewGuid().ToString("N"))}";
        var result = await CustomerFollowUpApi.RecordEntryAsync(customer, request, () => (true, key), user, services.GetRequiredService<IGrainFactory>(),
            services.GetRequiredService<IRoutingStore>(), contexts, services.GetRequiredService<TimeProvider>(), cancellationToken);
        if (result is not ProblemHttpResult problem)
            return true;
        var field = problem.ProblemDetails.Extensions.TryGetValue("field", out var f) ? f as string : null;
        state.AddModelError(field is not null && Inputs.TryGetValue(field, out var input) ? input : SummaryKey, problem.ProblemDetails.Detail ?? "Refused.");
        return false;
    }

    /// <summary>The form to render: after a refusal with what was posted (and the same one-time id), else empty.</summary>
    public FollowUpForm Show(ModelStateDictionary state)
    {
        var refused = state.Any(e => (e.Key == SummaryKey || Inputs.ContainsValue(e.Key)) && e.Value is { Errors.Count: > 0 });
        return new(FollowUpRequestId is { Length: > 0 } posted && refused ? posted : Guid.NewGuid().ToString("N"),
            FollowUpHow, FollowUpAt, FollowUpOutcome, FollowUpNextDue, FollowUpOwner, FollowUpTeam, refused);
    }
}
