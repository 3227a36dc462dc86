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
            (EditId, EditJson) = (item.Id, Pretty(item.Json));
        EditJson ??= Example;
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

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
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
