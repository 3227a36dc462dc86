using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Routing;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Crm.Service.Api;

/// <summary>PUT body of a calendar: its id comes from the URL.</summary>
public sealed record CalendarRequest(string? Name, string? TimeZone, IReadOnlyList<BusinessHoursRange>? Hours, IReadOnlyList<DateOnly>? Holidays);

/// <summary>PUT body of an SLA policy: its id comes from the URL.</summary>
public sealed record SlaPolicyRequest(string? Name, int? Order, TicketConditions? Conditions, string? CalendarId,
    IReadOnlyList<SlaTarget>? Targets, double? WarningAt, IReadOnlyList<EscalationLevel>? Escalations);

/// <summary>PUT body of a routing rule: its id comes from the URL.</summary>
public sealed record RoutingRuleRequest(string? Name, int? Order, bool? Enabled, TicketConditions? Conditions, string? Team,
    TicketPriority? Priority, IReadOnlyList<string>? AddTags);

/// <summary>Admin API for business-hours calendars (<c>/api/v1/admin/calendars</c>) and SLA policies
/// (<c>/api/v1/admin/sla-policies</c>); agents read a ticket's clocks at <c>/api/v1/tickets/{number}/sla</c>.</summary>
public static class RoutingApi
{
    public const int MaxPolicies = 200;
    public const int MaxHolidays = 5000;
    public const int MaxRules = 500;
    public const int MaxConditionValues = 100;
    /// <summary>Escalation levels a policy holds (the admin page offers as many rows).</summary>
    public const int MaxEscalations = 10;

    public static IEndpointRouteBuilder MapRoutingApi(this IEndpointRouteBuilder endpoints)
    {
        var admin = endpoints.MapGroup("/api/v1/admin").RequireAuthorization(ApiKeyAuthenticationExtensions.AdminPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        admin.MapGet("/calendars", async (IRoutingStore store, CancellationToken ct) =>
            TypedResults.Ok((await store.ListAsync(RoutingKinds.Calendar, ct)).Select(RoutingJson.Read<BusinessCalendarDefinition>).ToList()));
        admin.MapGet("/calendars/{id}", GetCalendarAsync);
        admin.MapPut("/calendars/{id}", PutCalendarAsync);
        admin.MapDelete("/calendars/{id}", (string id, IRoutingStore store, CancellationToken ct) => DeleteAsync(RoutingKinds.Calendar, id, "calendar", store, ct));
        admin.MapPost("/calendars/{id}/holidays/import", ImportHolidaysAsync);
        admin.MapGet("/sla-policies", async (IRoutingStore store, CancellationToken ct) => TypedResults.Ok(await store.PoliciesAsync(ct)));
        admin.MapGet("/sla-policies/{id}", GetPolicyAsync);
        admin.MapPut("/sla-policies/{id}", PutPolicyAsync);
        admin.MapDelete("/sla-policies/{id}", (string id, IRoutingStore store, CancellationToken ct) => DeleteAsync(RoutingKinds.SlaPolicy, id, "SLA policy", store, ct));

        admin.MapGet("/routing-rules", async (IRoutingStore store, CancellationToken ct) => TypedResults.Ok(await store.RoutingRulesAsync(ct)));
        admin.MapGet("/routing-rules/{id}", GetRuleAsync);
        admin.MapPut("/routing-rules/{id}", PutRuleAsync);
        admin.MapDelete("/routing-rules/{id}", (string id, IRoutingStore store, CancellationToken ct) => DeleteAsync(RoutingKinds.RoutingRule, id, "routing rule", store, ct));

        admin.MapGet("/teams/{id}/assignment", GetAssignmentAsync);
        admin.MapPut("/teams/{id}/assignment", PutAssignmentAsync);

        endpoints.MapGroup("/api/v1").RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy)
            .MapGet("/tickets/{number:long}/sla", async (long number, IGrainFactory grains) =>
                TypedResults.Ok(await grains.GetGrain<ISlaClockGrain>(number).GetAsync()))
            .AddEndpointFilter<TicketReachFilter>();
        endpoints.MapFollowUpApi();
        return endpoints;
    }

    internal static async Task<Results<Ok<BusinessCalendarDefinition>, ProblemHttpResult>> GetCalendarAsync(string id, IRoutingStore store, CancellationToken cancellationToken) =>
        TeamDirectory.IsValidId(id) && await store.GetAsync(RoutingKinds.Calendar, id, cancellationToken) is { } json
            ? TypedResults.Ok(RoutingJson.Read<BusinessCalendarDefinition>(json))
            : Problems.Of(ProblemKind.NotFound, $"No calendar '{id}'.", "id");

    internal static async Task<Results<Ok<BusinessCalendarDefinition>, ProblemHttpResult>> PutCalendarAsync(
        string id, CalendarRequest request, IRoutingStore store, CancellationToken cancellationToken)
    {
        if (!TeamDirectory.IsValidId(id))
            return Problems.Invalid("id", "A calendar id is 1-64 lower-case letters, digits or '-'.");
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 100)
            return Problems.Invalid("name", "name is required (at most 100 characters).");
        if ((request.Holidays?.Count ?? 0) > MaxHolidays || (request.Hours?.Count ?? 0) > 7 * 24)
            return Problems.Invalid("holidays", $"At most {MaxHolidays} holidays and {7 * 24} ranges of hours.");
        var calendar = new BusinessCalendarDefinition
        {
            Id = id,
            Name = request.Name.Trim(),
            TimeZone = request.TimeZone ?? "UTC",
            Hours = request.Hours ?? [],
            Holidays = [.. (request.Holidays ?? []).Distinct().Order()],
        };
        BusinessCalendar.From(calendar); // checks zone and hours; a DomainException becomes a 400 naming the field
        await store.PutAsync(RoutingKinds.Calendar, id, RoutingJson.Write(calendar), cancellationToken);
        return TypedResults.Ok(calendar);
    }

    /// <summary>Adds the all-day events of an .ics body (text/calendar) for the years <c>from</c>-<c>to</c> (default: this and next year).</summary>
    internal static Task<Results<Ok<BusinessCalendarDefinition>, ProblemHttpResult>> ImportHolidaysAsync(
        string id, int? from, int? to, HttpRequest http, IRoutingStore store, TimeProvider time, CancellationToken cancellationToken) =>
        ImportHolidaysFromAsync(id, from, to, http.Body, store, time, cancellationToken);

    /// <summary>The import of <paramref name="body"/> (the .ics text): the API's body, or the calendar page's uploaded file.</summary>
    internal static async Task<Results<Ok<BusinessCalendarDefinition>, ProblemHttpResult>> ImportHolidaysFromAsync(
        string id, int? from, int? to, Stream body, IRoutingStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!TeamDirectory.IsValidId(id) || await store.GetAsync(RoutingKinds.Calendar, id, cancellationToken) is not { } json)
            return Problems.Of(ProblemKind.NotFound, $"No calendar '{id}'; create it first with PUT.", "id");
        var year = time.GetUtcNow().Year;
        var (first, last) = (from ?? year, to ?? year + 1);
        if (first < 1900 || last > 2200 || last < first || last - first > 20)
            return Problems.Invalid("from", "from and to are years between 1900 and 2200, at most 20 apart.");
        using var reader = new StreamReader(body);
        var buffer = new char[HolidayImport.MaxBytes + 1];
        var read = await reader.ReadBlockAsync(buffer, cancellationToken);
        if (read > HolidayImport.MaxBytes)
            return Problems.Of(ProblemKind.TooLarge, $"The calendar file is larger than {HolidayImport.MaxBytes / 1024} KiB.", "body");
        var days = HolidayImport.Parse(new string(buffer, 0, read), first, last, cancellationToken);
        var calendar = RoutingJson.Read<BusinessCalendarDefinition>(json);
        calendar = calendar with { Holidays = [.. calendar.Holidays.Union(days).Order()] };
        if (calendar.Holidays.Count > MaxHolidays)
            return Problems.Invalid("body", $"A calendar holds at most {MaxHolidays} holidays.");
        await store.PutAsync(RoutingKinds.Calendar, id, RoutingJson.Write(calendar), cancellationToken);
        return TypedResults.Ok(calendar);
    }

    internal static async Task<Results<Ok<SlaPolicy>, ProblemHttpResult>> GetPolicyAsync(string id, IRoutingStore store, CancellationToken cancellationToken) =>
        TeamDirectory.IsValidId(id) && await store.GetAsync(RoutingKinds.SlaPolicy, id, cancellationToken) is { } json
            ? TypedResults.Ok(RoutingJson.Read<SlaPolicy>(json))
            : Problems.Of(ProblemKind.NotFound, $"No SLA policy '{id}'.", "id");

    internal static async Task<Results<Ok<SlaPolicy>, ProblemHttpResult>> PutPolicyAsync(
        string id, SlaPolicyRequest request, IRoutingStore store, TeamDirectory teams, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!TeamDirectory.IsValidId(id))
            return Problems.Invalid("id", "An SLA policy id is 1-64 lower-case letters, digits or '-'.");
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 100)
            return Problems.Invalid("name", "name is required (at most 100 characters).");
        var targets = request.Targets ?? [];
        if (targets.Count == 0 || targets.GroupBy(t => t.Priority).Any(g => g.Count() > 1))
            return Problems.Invalid("targets", "targets needs one entry per priority it covers (low, normal, high, urgent), each at most once.");
        if (targets.Any(t => new[] { t.FirstResponse, t.NextResponse, t.Resolution }.Any(v => v is { } span && (span <= TimeSpan.Zero || span > TimeSpan.FromDays(365)))))
            return Problems.Invalid("targets", "Each target is a positive time span of at most 365 days (\"04:00:00\", \"2.00:00:00\").");
        if (request.WarningAt is { } warning && (warning <= 0 || warning >= 1))
            return Problems.Invalid("warningAt", "warningAt is a fraction of the target between 0 and 1 (0.8 warns at 80%), or null for no warning.");
        var escalations = request.Escalations ?? [new EscalationLevel { NotifySupervisors = true }];
        if (escalations.Count > MaxEscalations || escalations.Any(e => e.After < TimeSpan.Zero || e.After > TimeSpan.FromDays(365))
            || escalations.Any(e => e.ReassignToTeam is { } team && !TeamDirectory.IsValidId(team))
            || escalations.Any(e => e.AddTag is { } tag && (string.IsNullOrWhiteSpace(tag) || tag.Length > 64)))
            return Problems.Invalid("escalations", $"At most {MaxEscalations} escalation levels; after from 0 to 365 days, reassignToTeam a team id, addTag 1-64 characters.");
        foreach (var team in escalations.Select(e => e.ReassignToTeam).OfType<string>().Distinct())
            if (await teams.GetAsync(team, cancellationToken) is null)
                return Problems.Invalid("escalations", $"No team '{team}' to reassign to; create it under /api/v1/admin/teams first.");
        if (request.CalendarId is { } calendarId && await store.GetAsync(RoutingKinds.Calendar, calendarId, cancellationToken) is null)
            return Problems.Invalid("calendarId", $"No calendar '{calendarId}'; create it under /api/v1/admin/calendars first.");
        var existing = await store.ListAsync(RoutingKinds.SlaPolicy, cancellationToken);
        if (existing.Count >= MaxPolicies && await store.GetAsync(RoutingKinds.SlaPolicy, id, cancellationToken) is null)
            return Problems.Invalid("id", $"At most {MaxPolicies} SLA policies.");
        var conditions = request.Conditions ?? new TicketConditions();
        if (await CheckConditionsAsync(conditions, store, cancellationToken) is { } bad)
            return bad;
        // The longest target plus the last escalation must be reachable in the calendar's open hours, or every
        // ticket under the policy would fail its clock.
        var longest = targets.SelectMany(t => new[] { t.FirstResponse, t.NextResponse, t.Resolution }).OfType<TimeSpan>().DefaultIfEmpty().Max()
            + escalations.Select(e => e.After).DefaultIfEmpty().Max();
        try
        {
            (await store.CalendarAsync(request.CalendarId, cancellationToken)).Add(time.GetUtcNow(), longest);
        }
        catch (InvalidOperationException)
        {
            return Problems.Invalid("targets", $"Calendar '{request.CalendarId}' has too few open hours for a target plus escalation of {longest} within {BusinessCalendar.MaxDaysAhead} days; shorten the targets or widen the hours.");
        }
        var policy = new SlaPolicy
        {
            Id = id,
            Name = request.Name.Trim(),
            Order = request.Order ?? 0,
            Conditions = conditions,
            CalendarId = request.CalendarId,
            Targets = targets,
            WarningAt = request.WarningAt,
            Escalations = escalations,
        };
        await store.PutAsync(RoutingKinds.SlaPolicy, id, RoutingJson.Write(policy), cancellationToken);
        return TypedResults.Ok(policy);
    }

    internal static async Task<Results<Ok<RoutingRule>, ProblemHttpResult>> GetRuleAsync(string id, IRoutingStore store, CancellationToken cancellationToken) =>
        TeamDirectory.IsValidId(id) && await store.GetAsync(RoutingKinds.RoutingRule, id, cancellationToken) is { } json
            ? TypedResults.Ok(RoutingJson.Read<RoutingRule>(json))
            : Problems.Of(ProblemKind.NotFound, $"No routing rule '{id}'.", "id");

    /// <summary>Creates or replaces a rule. Rules run in <c>order</c> (then id) on every new ticket; the first enabled
    /// one that matches sets the team and priority and adds the tags.</summary>
    internal static async Task<Results<Ok<RoutingRule>, ProblemHttpResult>> PutRuleAsync(
        string id, RoutingRuleRequest request, IRoutingStore store, TeamDirectory teams, CancellationToken cancellationToken)
    {
        if (!TeamDirectory.IsValidId(id))
            return Problems.Invalid("id", "A routing rule id is 1-64 lower-case letters, digits or '-'.");
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 100)
            return Problems.Invalid("name", "name is required (at most 100 characters).");
        if (request.Order is < -1_000_000 or > 1_000_000)
            return Problems.Invalid("order", "order is between -1000000 and 1000000 (lower runs first).");
        var tags = (request.AddTags ?? []).Select(t => t?.Trim() ?? "").ToList();
        if (tags.Count > 20 || tags.Any(t => t.Length is 0 or > 64))
            return Problems.Invalid("addTags", "At most 20 tags of 1-64 characters.");
        if (request.Team is null && request.Priority is null && tags.Count == 0)
            return Problems.Invalid("team", "A rule needs something to do: a team, a priority or tags to add.");
        if (request.Team is { } team && (!TeamDirectory.IsValidId(team) || await teams.GetAsync(team, cancellationToken) is null))
            return Problems.Invalid("team", $"No team '{team}'; create it under /api/v1/admin/teams first.");
        if (request.Priority is { } priority && !Enum.IsDefined(priority))
            return Problems.Invalid("priority", "priority is low, normal, high or urgent.");
        var conditions = request.Conditions ?? new TicketConditions();
        if (await CheckConditionsAsync(conditions, store, cancellationToken) is { } bad)
            return bad;
        if (await store.GetAsync(RoutingKinds.RoutingRule, id, cancellationToken) is null
            && (await store.ListAsync(RoutingKinds.RoutingRule, cancellationToken)).Count >= MaxRules)
            return Problems.Invalid("id", $"At most {MaxRules} routing rules; combine rules with lists of values.");
        var rule = new RoutingRule
        {
            Id = id,
            Name = request.Name.Trim(),
            Order = request.Order ?? 0,
            Enabled = request.Enabled ?? true,
            Conditions = conditions,
            Team = request.Team,
            Priority = request.Priority,
            AddTags = [.. tags.Distinct(StringComparer.OrdinalIgnoreCase)],
        };
        await store.PutAsync(RoutingKinds.RoutingRule, id, RoutingJson.Write(rule), cancellationToken);
        return TypedResults.Ok(rule);
    }

    /// <summary>Checks the conditions of a routing rule or an SLA policy; null when they are fine.</summary>
    internal static async Task<ProblemHttpResult?> CheckConditionsAsync(TicketConditions c, IRoutingStore store, CancellationToken cancellationToken)
    {
        IReadOnlyList<string>[] lists = [c.ChannelAccounts, c.CustomerTags, c.Segments, c.Languages, c.Keywords, c.Teams];
        if (lists.Any(l => l.Count > MaxConditionValues) || c.Channels.Count > MaxConditionValues || c.Priorities.Count > MaxConditionValues)
            return Problems.Invalid("conditions", $"A condition lists at most {MaxConditionValues} values.");
        if (lists.Any(l => l.Any(v => string.IsNullOrWhiteSpace(v) || v.Length > 100)))
            return Problems.Invalid("conditions", "Condition values are 1-100 characters (no empty keywords, tags or languages).");
        if (c.Channels.Any(ch => !Enum.IsDefined(ch)) || c.Priorities.Any(p => !Enum.IsDefined(p)))
            return Problems.Invalid("conditions", "Unknown channel kind or priority in the conditions.");
        if ((c.From is null) != (c.To is null))
            return Problems.Invalid("conditions.from", "A time-of-day window needs both from and to (\"18:00:00\" to \"08:00:00\" wraps midnight).");
        if (c.From is { } from && c.To is { } to && (from < TimeSpan.Zero || from >= TimeSpan.FromDays(1) || to < TimeSpan.Zero || to > TimeSpan.FromDays(1) || from == to))
            return Problems.Invalid("conditions.from", "from and to are local times of day from 00:00:00 to 24:00:00, and differ.");
        if (c.TimeZone is { } zone)
            BusinessCalendar.FindZone(zone); // a DomainException becomes a 400/422 naming timeZone
        if (c.InBusinessHours is not null && c.CalendarId is null)
            return Problems.Invalid("conditions.inBusinessHours", "inBusinessHours needs a calendarId whose hours it checks.");
        if (c.CalendarId is { } calendarId && (!TeamDirectory.IsValidId(calendarId) || await store.GetAsync(RoutingKinds.Calendar, calendarId, cancellationToken) is null))
            return Problems.Invalid("conditions.calendarId", $"No calendar '{calendarId}'; create it under /api/v1/admin/calendars first.");
        return null;
    }

    /// <summary>A team's assignment settings and its queue now.</summary>
    public sealed record TeamAssignmentView(TeamAssignmentSettings Settings, TeamQueueSnapshot Queue);

    /// <summary>PUT body: policy, agents by sign-in email (team members) with skills and capacity, offline return time.</summary>
    public sealed record TeamAssignmentRequest(AssignmentPolicy? Policy, IReadOnlyList<AgentRequest>? Agents, TimeSpan? ReturnTicketsAfterOffline);

    /// <param name="AccountId">The console account, instead of the email (a member without an email can be given work).</param>
    /// <param name="TakesWork">false keeps the member's skills and capacity without giving them work (default true).</param>
    /// <param name="MaxConcurrentChats">Open web chats at once (0-1000; null: only maxOpenTickets limits them).</param>
    public sealed record AgentRequest(string? Email, IReadOnlyList<string>? Skills, int? MaxOpenTickets, string? AccountId = null, bool? TakesWork = null,
        int? MaxConcurrentChats = null);

    internal static async Task<Results<Ok<TeamAssignmentView>, ProblemHttpResult>> GetAssignmentAsync(
        string id, TeamDirectory teams, IRoutingStore store, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (!TeamDirectory.IsValidId(id) || await teams.GetAsync(id, cancellationToken) is null)
            return Problems.Of(ProblemKind.NotFound, $"No team '{id}'.", "id");
        var json = await store.GetAsync(RoutingKinds.TeamAssignment, id, cancellationToken);
        var settings = json is null ? new TeamAssignmentSettings() : RoutingJson.Read<TeamAssignmentSettings>(json);
        return TypedResults.Ok(new TeamAssignmentView(settings, await grains.GetGrain<ITeamQueueGrain>(id).GetAsync()));
    }

    internal static async Task<Results<Ok<TeamAssignmentView>, ProblemHttpResult>> PutAssignmentAsync(
        string id, TeamAssignmentRequest request, TeamDirectory teams, IRoutingStore store, IGrainFactory grains,
        Microsoft.AspNetCore.Identity.UserManager<Microsoft.AspNetCore.Identity.IdentityUser> users, AgentConsole.IAgentPresence presence, CancellationToken cancellationToken)
    {
        if (!TeamDirectory.IsValidId(id) || await teams.GetAsync(id, cancellationToken) is not { } team)
            return Problems.Of(ProblemKind.NotFound, $"No team '{id}'; create it under /api/v1/admin/teams first.", "id");
        if (request.ReturnTicketsAfterOffline is { } after && (after < TimeSpan.FromMinutes(1) || after > TimeSpan.FromDays(30)))
            return Problems.Invalid("returnTicketsAfterOffline", "returnTicketsAfterOffline is between 00:01:00 and 30.00:00:00, or null to keep tickets with their agent.");
        var agents = new List<AgentCapacity>();
        var notTaking = new List<AgentCapacity>();
        var accounts = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var agent in request.Agents ?? [])
        {
            var who = agent.AccountId ?? agent.Email;
            var found = !string.IsNullOrWhiteSpace(agent.AccountId) ? await users.FindByIdAsync(agent.AccountId.Trim())
                : !string.IsNullOrWhiteSpace(agent.Email) ? await users.FindByEmailAsync(agent.Email.Trim()) : null;
            if (found is not { UserName: { } userName } user || !team.MemberIds.Contains(user.Id))
                return Problems.Invalid("agents", $"'{who}' is not a member of team '{id}'; add them to the team first.");
            if (agent.MaxOpenTickets is < 1 or > 10_000 || (agent.Skills?.Count ?? 0) > 50 || (agent.Skills ?? []).Any(s => string.IsNullOrWhiteSpace(s) || s.Length > 64))
                return Problems.Invalid("agents", "maxOpenTickets is 1-10000; at most 50 skills of 1-64 characters.");
            if (agent.MaxConcurrentChats is < 0 or > 1000)
                return Problems.Invalid("agents", "maxConcurrentChats is 0-1000 (0: no web chats), or null for no separate limit.");
            if (!seen.Add(user.Id))
                return Problems.Invalid("agents", $"'{who}' is listed twice; give each agent one entry.");
            // Queues know agents by sign-in name: it is what a ticket's assignee holds ("Mine", "assign to me", macros).
            var capacity = new AgentCapacity(userName, [.. (agent.Skills ?? []).Select(s => s.Trim())], agent.MaxOpenTickets ?? 20, agent.MaxConcurrentChats);
            if (agent.TakesWork == false)
            {
                notTaking.Add(capacity);
                continue;
            }
            accounts.Add(user.Id);
            agents.Add(capacity);
        }
        var settings = new TeamAssignmentSettings
        {
            Policy = request.Policy ?? AssignmentPolicy.Manual,
            Agents = agents,
            ReturnTicketsAfterOffline = request.ReturnTicketsAfterOffline,
            NotTakingWork = notTaking,
        };
        // The queue takes the settings first (it keeps them in its own document); this copy is what GET shows.
        var queue = grains.GetGrain<ITeamQueueGrain>(id);
        await queue.ConfigureAsync(settings, cancellationToken);
        await store.PutAsync(RoutingKinds.TeamAssignment, id, RoutingJson.Write(settings), cancellationToken);
        for (var i = 0; i < agents.Count; i++)
            await queue.SetOnlineAsync(agents[i].UserId, (await presence.GetAsync(accounts[i], cancellationToken)).Status == AgentConsole.PresenceStatus.Online, cancellationToken);
        return TypedResults.Ok(new TeamAssignmentView(settings, await queue.GetAsync()));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string kind, string id, string what, IRoutingStore store, CancellationToken cancellationToken) =>
        TeamDirectory.IsValidId(id) && await store.DeleteAsync(kind, id, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.Of(ProblemKind.NotFound, $"No {what} '{id}'.", "id");
}
