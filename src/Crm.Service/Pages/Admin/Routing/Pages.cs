using System.Text.Json;
using Crm.Service.Api;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Mvc;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Routing;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.Http.HttpResults;

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

    /// <summary>"Add level" (a plain post, no script needed): the form as typed with one more empty escalation row.
    /// Nothing is saved; the rows keep what was typed.</summary>
    public async Task<IActionResult> OnPostAddLevelAsync(CancellationToken cancellationToken)
    {
        Policy.AddLevel();
        ModelState.Remove(nameof(EditId));
        ModelState.Remove(nameof(EditJson));
        await LoadAsync(cancellationToken);
        EditJson ??= Example;
        return Page();
    }

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
[RequestFormLimits(MultipartBodyLengthLimit = 2 * HolidayImport.MaxBytes)]
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

    /// <summary>The form key of the holiday import's file (its refusals are shown there).</summary>
    public const string IcsFileKey = "IcsFile";

    /// <summary>The .ics file of the holiday import; the body limit leaves room for the form's other fields, the
    /// handler refuses a file over <see cref="HolidayImport.MaxBytes"/> at the field, as the API refuses such a body.</summary>
    [BindProperty] public IFormFile? IcsFile { get; set; }
    [BindProperty] public int? ImportFrom { get; set; }
    [BindProperty] public int? ImportTo { get; set; }

    /// <summary>Imports an iCalendar file's all-day events as holidays of the stored calendar <paramref name="id"/>,
    /// through the API's own import (<see cref="RoutingApi.ImportHolidaysFromAsync"/>): same parser, limits and messages.</summary>
    public async Task<IActionResult> OnPostImportAsync(string id, CancellationToken cancellationToken)
    {
        // Only the import's fields are part of this post.
        foreach (var key in ModelState.Keys.Where(k => k is nameof(EditId) or nameof(EditJson) || k.StartsWith(FormName + ".", StringComparison.Ordinal)).ToList())
            ModelState.Remove(key);
        string? error = null;
        var errorKey = IcsFileKey;
        if (IcsFile is null || IcsFile.Length == 0)
            error = "Choose an .ics file to import.";
        else if (IcsFile.Length > HolidayImport.MaxBytes)
            error = $"The calendar file is larger than {HolidayImport.MaxBytes / 1024} KiB.";
        else if (ModelState.IsValid)
        {
            try
            {
                await using var body = IcsFile.OpenReadStream();
                var result = (await RoutingApi.ImportHolidaysFromAsync(id, ImportFrom, ImportTo, body, Store,
                    HttpContext.RequestServices.GetRequiredService<TimeProvider>(), cancellationToken)).Result;
                error = result is ProblemHttpResult problem ? problem.ProblemDetails.Detail ?? problem.ProblemDetails.Title ?? "Refused." : null;
                // The years' refusal names "from"; the rest (the file, the calendar's size) is the file's.
                if (result is ProblemHttpResult { ProblemDetails.Extensions: var extensions } && extensions.TryGetValue("field", out var field) && field as string == "from")
                    errorKey = nameof(ImportFrom);
            }
            catch (DomainException ex)
            {
                error = ex.Message;
            }
            if (error is null)
                return RedirectToPage(new { edit = id });
        }
        if (error is not null)
            ModelState.AddModelError(errorKey, error);
        // The calendar stays on screen: the form shows it as stored.
        if (await Store.GetAsync(RoutingKinds.Calendar, id, cancellationToken) is { } json)
        {
            Fill(json);
            (EditId, EditJson) = (id, json);
        }
        return await RefusedAsync(cancellationToken);
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
