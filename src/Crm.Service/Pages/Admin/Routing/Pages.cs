using System.Text.Json;
using Crm.Service.Api;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Mvc;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Teams;

namespace Crm.Service.Pages.Admin.Routing;

/// <summary>Routing rules (<c>/Admin/Routing/Rules</c>), checked by <see cref="RoutingApi.PutRuleAsync"/>.</summary>
public sealed class RulesModel(IRoutingStore store) : RoutingSettingsPage(store)
{
    protected override string Kind => RoutingKinds.RoutingRule;

    [BindProperty] public RuleForm Rule { get; set; } = new();

    public override string FormName => nameof(Rule);

    // The zone check names "timeZone"; on this form it is the conditions' zone.
    protected override IReadOnlyDictionary<string, string>? Renames => ConditionRenames;

    internal static readonly IReadOnlyDictionary<string, string> ConditionRenames = new Dictionary<string, string> { ["timeZone"] = "Conditions.TimeZone" };

    protected override void Fill(string json) => Rule = RuleForm.Of(RoutingJson.Read<RoutingRule>(json));

    public Task<IActionResult> OnPostFieldsAsync(CancellationToken cancellationToken) =>
        SaveFieldsAsync(async () => (await RoutingApi.PutRuleAsync(Rule.Id?.Trim() ?? "", Rule.ToRequest(), Store,
            HttpContext.RequestServices.GetRequiredService<TeamDirectory>(), cancellationToken)).Result, cancellationToken);

    public override string Example => """
        {
          "name": "Refunds to billing",
          "order": 10,
          "enabled": true,
          "conditions": { "keywords": ["refund"] },
          "team": "billing",
          "priority": null,
          "addTags": []
        }
        """;

    protected override async Task<IResult> PutAsync(string id, string json, JsonSerializerOptions options, IServiceProvider services, CancellationToken cancellationToken) =>
        (await RoutingApi.PutRuleAsync(id, Read<RoutingRuleRequest>(json, options), Store, services.GetRequiredService<TeamDirectory>(), cancellationToken)).Result;
}

/// <summary>SLA policies (<c>/Admin/Routing/SlaPolicies</c>), checked by <see cref="RoutingApi.PutPolicyAsync"/>.</summary>
public sealed class SlaPoliciesModel(IRoutingStore store) : RoutingSettingsPage(store)
{
    protected override string Kind => RoutingKinds.SlaPolicy;

    [BindProperty] public PolicyForm Policy { get; set; } = new();

    public override string FormName => nameof(Policy);

    protected override IReadOnlyDictionary<string, string>? Renames => RulesModel.ConditionRenames;

    protected override void Fill(string json) => Policy = PolicyForm.Of(RoutingJson.Read<SlaPolicy>(json));

    public Task<IActionResult> OnPostFieldsAsync(CancellationToken cancellationToken) =>
        SaveFieldsAsync(async () => (await RoutingApi.PutPolicyAsync(Policy.Id?.Trim() ?? "", Policy.ToRequest(), Store,
            HttpContext.RequestServices.GetRequiredService<TeamDirectory>(), HttpContext.RequestServices.GetRequiredService<TimeProvider>(),
            cancellationToken)).Result, cancellationToken);

    public override string Example => """
        {
          "name": "Standard",
          "order": 10,
          "conditions": {},
          "calendarId": null,
          "targets": [ { "priority": "normal", "firstResponse": "04:00:00", "resolution": "2.00:00:00" } ],
          "warningAt": 0.8,
          "escalations": [ { "after": "00:00:00", "notifyAssignee": true, "notifySupervisors": true } ]
        }
        """;

    protected override async Task<IResult> PutAsync(string id, string json, JsonSerializerOptions options, IServiceProvider services, CancellationToken cancellationToken) =>
        (await RoutingApi.PutPolicyAsync(id, Read<SlaPolicyRequest>(json, options), Store, services.GetRequiredService<TeamDirectory>(),
            services.GetRequiredService<TimeProvider>(), cancellationToken)).Result;
}

/// <summary>Business-hours calendars and their holidays (<c>/Admin/Routing/Calendars</c>), checked by
/// <see cref="RoutingApi.PutCalendarAsync"/>.</summary>
public sealed class CalendarsModel(IRoutingStore store) : RoutingSettingsPage(store)
{
    protected override string Kind => RoutingKinds.Calendar;

    [BindProperty] public CalendarForm Calendar { get; set; } = new();

    public override string FormName => nameof(Calendar);

    protected override void Fill(string json) => Calendar = CalendarForm.Of(RoutingJson.Read<BusinessCalendarDefinition>(json));

    public async Task<IActionResult> OnPostFieldsAsync(CancellationToken cancellationToken)
    {
        var (request, key, error) = Calendar.ToRequest();
        if (request is null)
        {
            ModelState.AddModelError(FormName + "." + key, error!);
            return await RefusedAsync(cancellationToken);
        }
        return await SaveFieldsAsync(async () => (await RoutingApi.PutCalendarAsync(Calendar.Id?.Trim() ?? "", request, Store, cancellationToken)).Result,
            cancellationToken);
    }

    public override string Example => """
        {
          "name": "Berlin office",
          "timeZone": "Europe/Berlin",
          "hours": [ { "day": "monday", "open": "09:00:00", "close": "17:00:00" } ],
          "holidays": ["2026-12-25"]
        }
        """;

    protected override async Task<IResult> PutAsync(string id, string json, JsonSerializerOptions options, IServiceProvider services, CancellationToken cancellationToken) =>
        (await RoutingApi.PutCalendarAsync(id, Read<CalendarRequest>(json, options), Store, cancellationToken)).Result;
}
