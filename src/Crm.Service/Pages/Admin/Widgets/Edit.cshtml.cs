using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Connectors.WebChat;
using Crm.Service.Api;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Channels;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Crm.Service.Pages.Admin.Widgets;

/// <summary>
/// One web chat widget's look and reach (issue 18: "colour, title, greeting and position set per widget in the admin
/// view"), with a preview and the script tag to embed. A save goes through the very handler of
/// <c>PUT /api/v1/admin/channels/{id}</c> (same parsing, validation and checks); settings this page does not show
/// (email channel, uploads) are kept as stored.
/// </summary>
public sealed class EditModel(IGrainFactory grains, ChannelSettingsCatalog catalog, ChannelSettingsChecks checks, ChannelAccountDirectory directory,
    TeamDirectory teams, IOptions<ConsoleOptions> consoleOptions, Microsoft.Extensions.Localization.IStringLocalizer<ConsoleText> text) : PageModel
{
    /// <summary>Form field of each settings member, so a refusal ("settings.colour") shows at its field.</summary>
    private static readonly Dictionary<string, string> FieldOfSetting = new(StringComparer.Ordinal)
    {
        ["settings.allowedOrigins"] = nameof(AllowedOrigins),
        ["settings.colour"] = nameof(Colour),
        ["settings.title.en"] = nameof(TitleEn),
        ["settings.title.zh"] = nameof(TitleZh),
        ["settings.greeting.en"] = nameof(GreetingEn),
        ["settings.greeting.zh"] = nameof(GreetingZh),
        ["settings.position"] = nameof(Position),
        ["settings.team"] = nameof(Team),
        ["settings.preChatForm"] = nameof(PreChatForm),
    };

    public string Id { get; private set; } = "";

    public string Name { get; private set; } = "";

    public bool Saved { get; private set; }

    public IReadOnlyList<TeamView> Teams { get; private set; } = [];

    /// <summary>Sites, one per line ("https://shop.example.com").</summary>
    [BindProperty, StringLength(20_000)] public string? AllowedOrigins { get; set; }
    [BindProperty, StringLength(20)] public string? Colour { get; set; }
    [BindProperty, StringLength(1_000)] public string? TitleEn { get; set; }
    [BindProperty, StringLength(1_000)] public string? TitleZh { get; set; }
    [BindProperty, StringLength(5_000)] public string? GreetingEn { get; set; }
    [BindProperty, StringLength(5_000)] public string? GreetingZh { get; set; }
    [BindProperty, StringLength(20)] public string? Position { get; set; }
    [BindProperty, StringLength(100)] public string? Team { get; set; }
    [BindProperty] public bool PreChatForm { get; set; }
    /// <summary>The account's UpdatedAt the form was made from: a save over a newer change is refused, not merged.</summary>
    [BindProperty] public long Version { get; set; }

    /// <summary>The script tag a site embeds.</summary>
    public string Snippet => $"<script src=\"{ServiceOrigin}/widget.js\" data-channel=\"{Id}\" async></script>";

    private string ServiceOrigin => consoleOptions.Value.PublicBaseUrl?.TrimEnd('/') ?? $"{Request.Scheme}://{Request.Host}";

    /// <summary>The preview frame's address with the form's values (the page's script keeps it current while typing).</summary>
    public string PreviewUrl => QueryHelpers.AddQueryString($"/Admin/Widgets/Preview/{Id}", new Dictionary<string, string?>
    {
        ["colour"] = Colour, ["position"] = Position, ["titleEn"] = TitleEn, ["titleZh"] = TitleZh,
        ["greetingEn"] = GreetingEn, ["greetingZh"] = GreetingZh, ["preChatForm"] = PreChatForm ? "true" : "false",
        ["lang"] = CultureInfo.CurrentUICulture.Name.StartsWith("zh", StringComparison.Ordinal) ? "zh" : "en",
    });

    public async Task<IActionResult> OnGetAsync(string id, bool saved, CancellationToken cancellationToken)
    {
        if (await FindAsync(id) is not { } account)
            return NotFound();
        Saved = saved;
        var settings = catalog.Compose(ChannelKind.WebChat, account.Settings, new Dictionary<string, string>()) as WebChatSettings ?? new WebChatSettings();
        AllowedOrigins = string.Join("\n", settings.AllowedOrigins);
        Colour = settings.Colour;
        TitleEn = settings.Title.En;
        TitleZh = settings.Title.Zh;
        GreetingEn = settings.Greeting.En;
        GreetingZh = settings.Greeting.Zh;
        Position = JsonNamingPolicy.CamelCase.ConvertName(settings.Position.ToString());
        Team = settings.Team;
        PreChatForm = settings.PreChatForm;
        Version = account.UpdatedAt.UtcTicks;
        await LoadAsync(account, cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string id, CancellationToken cancellationToken)
    {
        if (await FindAsync(id) is not { } account)
            return NotFound();
        var stale = text["Someone changed this widget meanwhile. Reload the page to see their change, then edit again."];
        if (ModelState.IsValid && Version != account.UpdatedAt.UtcTicks)
            ModelState.AddModelError("", stale);
        if (ModelState.IsValid)
        {
            // The stored settings with this form's fields replaced: what the page does not show stays as it is.
            var settings = JsonNode.Parse(string.IsNullOrEmpty(account.Settings) ? "{}" : account.Settings) as JsonObject ?? [];
            settings["allowedOrigins"] = new JsonArray([.. (AllowedOrigins ?? "").Split(['\n', '\r', ',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(o => (JsonNode?)JsonValue.Create(o))]);
            settings["colour"] = (Colour ?? "").Trim();
            settings["title"] = new JsonObject { ["en"] = Blank(TitleEn), ["zh"] = Blank(TitleZh) };
            settings["greeting"] = new JsonObject { ["en"] = Blank(GreetingEn), ["zh"] = Blank(GreetingZh) };
            settings["position"] = (Position ?? "").Trim();
            settings["team"] = Blank(Team);
            settings["preChatForm"] = PreChatForm;
            // The grain applies it only over the version this form was made from (review WC4): a change committed since
            // (another admin, PUT /api/v1/admin/channels, which may have renamed or disabled the widget) is refused, not
            // overwritten with this page's older name and state.
            var result = await AdminApi.ConfigureChannelIfAsync(id, new ChannelRequest(ChannelKind.WebChat, account.Name, account.Enabled, settings, null, null),
                new DateTimeOffset(Version, TimeSpan.Zero), grains, catalog, checks, directory, cancellationToken);
            if (result.Result is Ok<ChannelView>)
                return Redirect($"/Admin/Widgets/Edit/{id}?saved=true");
            var problem = ((ProblemHttpResult)result.Result).ProblemDetails;
            var field = problem.Extensions.TryGetValue("field", out var named) ? named as string : null;
            if (field == Grains.ChannelAccountGrain.StaleField)
                ModelState.AddModelError("", stale);
            else
                ModelState.AddModelError(field is not null && FieldOfSetting.TryGetValue(field, out var input) ? input : "", problem.Detail ?? problem.Title ?? "");
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(account, cancellationToken);
        return Page();
    }

    private static string? Blank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();

    private async Task<ChannelAccountSnapshot?> FindAsync(string id) =>
        GrainKeys.IsValidChannelAccountId(id) && await grains.GetGrain<IChannelAccountGrain>(id).GetAsync() is { Kind: ChannelKind.WebChat } account ? account : null;

    private async Task LoadAsync(ChannelAccountSnapshot account, CancellationToken cancellationToken)
    {
        Id = account.Id;
        Name = account.Name;
        Teams = await teams.ListAsync(cancellationToken);
    }
}
