using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Crm.Service.Api;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Crm.Service.Pages.Admin.Routing;

/// <summary>An admin page for one kind of routing setting (routing rules, SLA policies, business calendars): list,
/// create/edit as the JSON body of the admin REST API (the same handler checks it, so the page and the API refuse the
/// same things, with the same messages), delete. Admins only (the /Admin folder), anti-forgery on every form.</summary>
public abstract class RoutingSettingsPage(IRoutingStore store) : PageModel
{
    public const int MaxJson = 256 * 1024;

    protected IRoutingStore Store => store;

    /// <summary>The document kind in the routing store.</summary>
    protected abstract string Kind { get; }

    /// <summary>Checks and stores the JSON as the admin API's PUT of <paramref name="id"/> does.</summary>
    protected abstract Task<IResult> PutAsync(string id, string json, JsonSerializerOptions options, IServiceProvider services, CancellationToken cancellationToken);

    /// <summary>The stored documents (id, JSON), in the list's order.</summary>
    public IReadOnlyList<(string Id, string Name, string Json)> Items { get; private set; } = [];

    [BindProperty, Required, StringLength(64)] public string? EditId { get; set; }
    [BindProperty, Required, StringLength(MaxJson)] public string? EditJson { get; set; }

    /// <summary>The example a new item's form starts with.</summary>
    public abstract string Example { get; }

    public async Task OnGetAsync(string? edit, CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken);
        if (edit is not null && Items.FirstOrDefault(i => i.Id == edit) is { Id: not null } item)
        {
            (EditId, EditJson) = (item.Id, Pretty(item.Json));
            Fill(item.Json);
        }
        EditJson ??= Example;
    }

    /// <summary>Fills the page's form fields from a stored document (the item being edited).</summary>
    protected abstract void Fill(string json);

    /// <summary>The name of the page's form property (the prefix of its fields' keys).</summary>
    public abstract string FormName { get; }

    /// <summary>API problem fields whose form field is not their PascalCase path.</summary>
    protected virtual IReadOnlyDictionary<string, string>? Renames => null;

    /// <summary>Saves the form fields through the admin API's handler; a refusal goes to the field it names, the page
    /// answers 422 with the form as typed.</summary>
    protected async Task<IActionResult> SaveFieldsAsync(Func<Task<IResult>> put, CancellationToken cancellationToken)
    {
        // The JSON form's fields are not part of this post.
        ModelState.Remove(nameof(EditId));
        ModelState.Remove(nameof(EditJson));
        if (ModelState.IsValid)
        {
            (string? Field, string Message)? refused;
            try
            {
                refused = await put() is ProblemHttpResult problem
                    ? (problem.ProblemDetails.Extensions.TryGetValue("field", out var field) ? field as string : null,
                        problem.ProblemDetails.Detail ?? problem.ProblemDetails.Title ?? "Refused.")
                    : null;
            }
            catch (DomainException ex)
            {
                refused = (ex.Field, ex.Message);
            }
            if (refused is null)
                return RedirectToPage();
            ModelState.AddModelError(FormLists.Key(FormName, refused.Value.Field, Renames), refused.Value.Message);
        }
        return await RefusedAsync(cancellationToken);
    }

    protected async Task<IActionResult> RefusedAsync(CancellationToken cancellationToken)
    {
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        EditJson ??= Example;
        return Page();
    }

    public async Task<IActionResult> OnPostSaveAsync(CancellationToken cancellationToken)
    {
        if (ModelState.IsValid)
        {
            var options = HttpContext.RequestServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
            string? error;
            try
            {
                var result = await PutAsync(EditId!.Trim(), EditJson!, options, HttpContext.RequestServices, cancellationToken);
                error = result is ProblemHttpResult problem ? problem.ProblemDetails.Detail ?? problem.ProblemDetails.Title : null;
            }
            catch (JsonException ex)
            {
                error = "The JSON is not valid: " + ex.Message;
            }
            catch (DomainException ex)
            {
                error = ex.Message;
            }
            if (error is null)
                return RedirectToPage();
            ModelState.AddModelError(nameof(EditJson), error);
        }
        // Shown with the form as typed, and a 422 like the API's.
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(string id, CancellationToken cancellationToken)
    {
        await store.DeleteAsync(Kind, id, cancellationToken);
        return RedirectToPage();
    }

    /// <summary>Team and calendar ids the form offers (the API still checks what is typed).</summary>
    public IReadOnlyList<string> TeamIds { get; private set; } = [];
    public IReadOnlyList<string> CalendarIds { get; private set; } = [];

    protected async Task LoadAsync(CancellationToken cancellationToken)
    {
        TeamIds = [.. (await HttpContext.RequestServices.GetRequiredService<Crm.Service.Infrastructure.Teams.TeamDirectory>().ListAsync(cancellationToken))
            .Select(t => t.Id).Order(StringComparer.Ordinal)];
        CalendarIds = [.. (await store.ListAsync(RoutingKinds.Calendar, cancellationToken))
            .Select(json => RoutingJson.Read<BusinessCalendarDefinition>(json).Id).Order(StringComparer.Ordinal)];
        Items = [.. (await store.ListAsync(Kind, cancellationToken)).Select(json =>
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            return (root.GetProperty("id").GetString() ?? "", root.TryGetProperty("name", out var name) ? name.GetString() ?? "" : "", json);
        }).OrderBy(i => i.Item1, StringComparer.Ordinal)];
    }

    private static string Pretty(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return JsonSerializer.Serialize(doc.RootElement, new JsonSerializerOptions { WriteIndented = true });
    }

    protected static T Read<T>(string json, JsonSerializerOptions options) =>
        JsonSerializer.Deserialize<T>(json, options) ?? throw new JsonException("The body is empty (null).");
}
