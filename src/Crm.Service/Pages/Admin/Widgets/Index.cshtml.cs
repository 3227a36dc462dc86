using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Admin.Widgets;

/// <summary>The web chat widgets (channel accounts of kind webchat), each with a link to its settings and preview.</summary>
public sealed class IndexModel(IDbContextFactory<CrmDbContext> contexts) : PageModel
{
    public sealed record WidgetRow(string Id, string Name, bool Enabled, IReadOnlyList<string> Origins);

    public IReadOnlyList<WidgetRow> Widgets { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var rows = await db.ChannelAccounts.AsNoTracking().Where(c => c.Kind == ChannelKind.WebChat).OrderBy(c => c.Id)
            .Select(c => new { c.Id, c.Name, c.Enabled, c.Settings }).Take(1000).ToListAsync(cancellationToken);
        Widgets = [.. rows.Select(r => new WidgetRow(r.Id, r.Name, r.Enabled, OriginsOf(r.Settings)))];
    }

    private static IReadOnlyList<string> OriginsOf(string? settings)
    {
        try
        {
            using var json = JsonDocument.Parse(settings ?? "{}");
            return json.RootElement.TryGetProperty("allowedOrigins", out var origins) && origins.ValueKind == JsonValueKind.Array
                ? [.. origins.EnumerateArray().Select(o => o.GetString() ?? "")]
                : [];
        }
        catch (JsonException)
        {
            return [];
        }
    }
}
