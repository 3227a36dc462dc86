using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Service.Api;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Channels;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Admin;

/// <summary>
/// Creates or edits one channel account of any kind (issue 17: "channel accounts of every kind"). A save goes through
/// the very handler of <c>PUT /api/v1/admin/channels/{id}</c> (same parsing, validation, connector checks), and a
/// rotation through that of <c>POST …/rotate-secret</c>, like /Admin/Widgets. The kind's typed settings are edited as
/// the API takes them (JSON, without its secret fields); each secret has its own write-only field: empty keeps the
/// stored one, and a stored secret is never put into the page. A signing secret the handler issues (a new API channel,
/// a rotation) is shown in that one answer only, as the API does.
/// </summary>
public sealed class ChannelsEditModel(IGrainFactory grains, ChannelSettingsCatalog catalog, ChannelSettingsChecks checks, ChannelAccountDirectory directory,
    Microsoft.Extensions.Localization.IStringLocalizer<ConsoleText> text) : PageModel
{
    /// <summary>Whether this page edits an existing account (else it creates one; id and kind are then fields).</summary>
    public bool Exists { get; private set; }

    public bool Saved { get; private set; }

    /// <summary>The signing secret the handler just issued; shown once, in this answer only.</summary>
    public string? IssuedSecret { get; private set; }

    /// <summary>The secret settings of the kind ("imap.password"), in the order of <see cref="SecretValues"/>.</summary>
    public IReadOnlyList<string> SecretNames { get; private set; } = [];

    /// <summary>The secret settings the stored account has.</summary>
    public IReadOnlyList<string> StoredSecrets { get; private set; } = [];

    public bool HasSigningSecret { get; private set; }

    public IEnumerable<ChannelKind> Kinds => catalog.Kinds.Order();

    [BindProperty, StringLength(64)] public string? Id { get; set; }
    [BindProperty] public ChannelKind? Kind { get; set; }
    [BindProperty, StringLength(100)] public string? Name { get; set; }
    [BindProperty] public bool Enabled { get; set; } = true;
    /// <summary>The kind's settings as the API's <c>settings</c> object, without its secret fields.</summary>
    [BindProperty, StringLength(100_000)] public string? SettingsJson { get; set; }
    /// <summary>New values of the secret settings; empty keeps the stored one.</summary>
    [BindProperty] public List<string?> SecretValues { get; set; } = [];
    /// <summary>The account's UpdatedAt the form was made from: a save over a newer change is refused, not merged.</summary>
    [BindProperty] public long Version { get; set; }

    public static string KindName(ChannelKind kind) => JsonNamingPolicy.CamelCase.ConvertName(kind.ToString());

    /// <summary>The input id of a secret setting ("secret-imap-password").</summary>
    public static string SecretInputId(string name) => "secret-" + name.Replace('.', '-');

    public async Task<IActionResult> OnGetAsync([FromRoute] string? id, ChannelKind? kind, bool saved)
    {
        if (id is null)
        {
            Kind = kind is { } k && catalog.Find(k) is not null ? k : ChannelKind.Api;
            SettingsJson = "{}";
            Describe(null);
            return Page();
        }
        if (await FindAsync(id) is not { } account)
            return NotFound();
        Saved = saved;
        Fill(account);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync([FromRoute] string? id, CancellationToken cancellationToken)
    {
        var account = id is null ? null : await FindAsync(id);
        if (id is not null && account is null)
            return NotFound();
        var channelId = account?.Id ?? Id?.Trim() ?? "";
        var kind = account?.Kind ?? Kind;
        if (account is null && !GrainKeys.IsValidChannelAccountId(channelId))
            ModelState.AddModelError(nameof(Id), text["A channel id is 1-64 lower-case letters, digits or '-'."]);
        else if (account is null && await FindAsync(channelId) is not null)
            ModelState.AddModelError(nameof(Id), text["A channel account with this id exists already; edit it from the list."]);
        if (kind is null || catalog.Find(kind.Value) is null)
            ModelState.AddModelError(nameof(Kind), text["Choose the kind of channel."]);
        JsonObject? settings = null;
        try
        {
            settings = JsonNode.Parse(string.IsNullOrWhiteSpace(SettingsJson) ? "{}" : SettingsJson) as JsonObject;
            if (settings is null)
                ModelState.AddModelError(nameof(SettingsJson), text["Settings must be a JSON object: { … }."]);
        }
        catch (JsonException ex)
        {
            ModelState.AddModelError(nameof(SettingsJson), text["Settings are not valid JSON:"] + " " + ex.Message.Split(". ")[0] + ".");
        }
        if (account is not null && ModelState.IsValid && Version != account.UpdatedAt.UtcTicks)
            ModelState.AddModelError("", text["Someone changed this channel account meanwhile. Reload the page to see their change, then edit again."]);
        if (ModelState.IsValid)
        {
            // Each secret typed in goes into the settings at its place; one left empty is left out, so the handler keeps it.
            var names = ChannelSettingsCatalog.SecretNames(catalog.Find(kind!.Value)!.SettingsType);
            for (var i = 0; i < names.Count && i < SecretValues.Count; i++)
                if (!string.IsNullOrEmpty(SecretValues[i]))
                    Put(settings!, names[i], SecretValues[i]!.Trim());
            var name = string.IsNullOrWhiteSpace(Name) ? null : Name.Trim();
            var result = await AdminApi.ConfigureChannelAsync(channelId, new ChannelRequest(kind, name, Enabled, settings, null, null),
                grains, catalog, checks, directory, cancellationToken);
            if (result.Result is Ok<ChannelView> { Value: { } view })
            {
                if (view.Secret is null)
                    return Redirect($"/Admin/Channels/Edit/{channelId}?saved=true");
                // A new API channel: its generated signing secret is in this answer only.
                return await ShowIssuedAsync(channelId, view.Secret);
            }
            AddProblem(((ProblemHttpResult)result.Result).ProblemDetails, names);
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        Exists = account is not null;
        Kind = kind;
        Id = channelId;
        Describe(account);
        // What was typed into a secret field is not sent back into the page.
        SecretValues = [];
        ModelState.Remove(nameof(SecretValues));
        return Page();
    }

    public async Task<IActionResult> OnPostRotateAsync([FromRoute] string? id, CancellationToken cancellationToken)
    {
        if (id is null || await FindAsync(id) is not { } account)
            return NotFound();
        var result = await AdminApi.RotateChannelSecretAsync(account.Id, grains, directory, cancellationToken);
        if (result.Result is Ok<ChannelView> { Value.Secret: { } secret })
            return await ShowIssuedAsync(account.Id, secret);
        ModelState.AddModelError("", ((ProblemHttpResult)result.Result).ProblemDetails.Detail ?? text["The secret could not be rotated."]);
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        Fill(account);
        return Page();
    }

    private async Task<IActionResult> ShowIssuedAsync(string id, string secret)
    {
        var account = await FindAsync(id);
        if (account is null)
            return NotFound();
        // Shown now and never again: not cached, not kept anywhere but in this answer.
        Response.Headers.CacheControl = "no-store";
        IssuedSecret = secret;
        Saved = true;
        ModelState.Clear();
        Fill(account);
        return Page();
    }

    private void Fill(ChannelAccountSnapshot account)
    {
        Id = account.Id;
        Kind = account.Kind;
        Name = account.Name;
        Enabled = account.Enabled;
        SettingsJson = Pretty(account.Settings);
        Version = account.UpdatedAt.UtcTicks;
        Exists = true;
        Describe(account);
    }

    private void Describe(ChannelAccountSnapshot? account)
    {
        SecretNames = Kind is { } kind && catalog.Find(kind) is { } definition ? ChannelSettingsCatalog.SecretNames(definition.SettingsType) : [];
        StoredSecrets = account?.SecretSettings ?? [];
        HasSigningSecret = account?.HasSecret ?? false;
    }

    /// <summary>The handler's refusal at its field: "settings.imap.password" at that secret's input, other settings at
    /// the JSON, "name" at the name.</summary>
    private void AddProblem(Microsoft.AspNetCore.Mvc.ProblemDetails problem, IReadOnlyList<string> secretNames)
    {
        var field = problem.Extensions.TryGetValue("field", out var named) ? named as string : null;
        var key = field switch
        {
            "name" => nameof(Name),
            "id" => nameof(Id),
            "kind" => nameof(Kind),
            "settings" => nameof(SettingsJson),
            { } setting when setting.StartsWith("settings.", StringComparison.Ordinal) =>
                secretNames.ToList().IndexOf(setting["settings.".Length..]) is var index and >= 0 ? $"{nameof(SecretValues)}[{index}]" : nameof(SettingsJson),
            _ => "",
        };
        ModelState.AddModelError(key, problem.Detail ?? problem.Title ?? "");
    }

    private static void Put(JsonObject root, string path, string value)
    {
        var parts = path.Split('.');
        var current = root;
        foreach (var part in parts[..^1])
            current = current[part] as JsonObject ?? (JsonObject)(current[part] = new JsonObject());
        current[parts[^1]] = value;
    }

    private static string Pretty(string? json)
    {
        try
        {
            return JsonNode.Parse(string.IsNullOrEmpty(json) ? "{}" : json)!.ToJsonString(new JsonSerializerOptions
            {
                WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            });
        }
        catch (JsonException)
        {
            return json ?? "{}";
        }
    }

    private async Task<ChannelAccountSnapshot?> FindAsync(string id) =>
        GrainKeys.IsValidChannelAccountId(id) ? await grains.GetGrain<IChannelAccountGrain>(id).GetAsync() : null;
}
