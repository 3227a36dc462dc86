using System.ComponentModel.DataAnnotations;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Replies;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Replies;

/// <summary>Canned responses and macros: everyone manages their own; Admins and Supervisors also the shared ones.</summary>
public sealed class IndexModel(ReplyLibrary library) : PageModel
{
    public IReadOnlyList<CannedResponseRecord> Canned { get; private set; } = [];
    public IReadOnlyList<MacroRecord> Macros { get; private set; } = [];

    [BindProperty] public Guid? CannedId { get; set; }
    [BindProperty, StringLength(40)] public string? Shortcut { get; set; }
    [BindProperty, StringLength(ReplyLibrary.MaxTitleLength)] public string? Title { get; set; }
    [BindProperty, StringLength(ReplyLibrary.MaxTextLength)] public string? Text { get; set; }
    [BindProperty] public bool Shared { get; set; }

    [BindProperty] public Guid? MacroId { get; set; }
    [BindProperty, StringLength(ReplyLibrary.MaxTitleLength)] public string? MacroName { get; set; }
    /// <summary>One action per line, "kind: value"; a line without a known "kind:" continues the previous value.</summary>
    [BindProperty, StringLength(ReplyLibrary.MaxActions * (ReplyLibrary.MaxTextLength + 20))] public string? MacroActions { get; set; }
    [BindProperty] public bool MacroShared { get; set; }

    public bool MayShare => User.IsInRole(ConsoleRoles.Admin) || User.IsInRole(ConsoleRoles.Supervisor);

    private string Me => TicketAccess.UserId(User);

    public bool IsMine(string ownerId) => ownerId == Me || (ownerId == ReplyLibrary.Shared && MayShare);

    public async Task OnGetAsync(Guid? editCanned, Guid? editMacro, CancellationToken cancellationToken)
    {
        if (editCanned is { } c && await library.FindCannedAsync(c, cancellationToken) is { } canned && IsMine(canned.OwnerId))
        {
            (CannedId, Shortcut, Title, Text, Shared) = (canned.Id, canned.Shortcut, canned.Title, canned.Text, canned.OwnerId == ReplyLibrary.Shared);
        }
        if (editMacro is { } m && await library.FindMacroAsync(m, cancellationToken) is { } macro && IsMine(macro.OwnerId))
        {
            (MacroId, MacroName, MacroActions, MacroShared) = (macro.Id, macro.Name, FormatActions(macro.Actions), macro.OwnerId == ReplyLibrary.Shared);
        }
        await LoadAsync(cancellationToken);
    }

    public async Task<IActionResult> OnPostCannedAsync(CancellationToken cancellationToken)
    {
        if (Shared && !MayShare)
            return Forbid();
        if (ModelState.IsValid)
        {
            var (_, error) = await library.SaveCannedAsync(CannedId, Shared ? ReplyLibrary.Shared : Me, Shortcut, Title, Text, User.ConsoleActor(), cancellationToken);
            if (error is null)
                return Redirect("/Replies");
            ModelState.AddModelError(error.Value.Field == "text" ? nameof(Text) : error.Value.Field == "title" ? nameof(Title) : nameof(Shortcut), error.Value.Message);
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteCannedAsync(Guid id, CancellationToken cancellationToken)
    {
        if (!await library.DeleteCannedAsync(id, Me, cancellationToken) && !(MayShare && await library.DeleteCannedAsync(id, ReplyLibrary.Shared, cancellationToken)))
            return NotFound();
        return Redirect("/Replies");
    }

    public async Task<IActionResult> OnPostMacroAsync(CancellationToken cancellationToken)
    {
        if (MacroShared && !MayShare)
            return Forbid();
        if (ModelState.IsValid)
        {
            var (_, error) = await library.SaveMacroAsync(MacroId, MacroShared ? ReplyLibrary.Shared : Me, MacroName, ParseActions(MacroActions), User.ConsoleActor(), cancellationToken);
            if (error is null)
                return Redirect("/Replies");
            ModelState.AddModelError(error.Value.Field == "name" ? nameof(MacroName) : nameof(MacroActions), error.Value.Message);
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteMacroAsync(Guid id, CancellationToken cancellationToken)
    {
        if (!await library.DeleteMacroAsync(id, Me, cancellationToken) && !(MayShare && await library.DeleteMacroAsync(id, ReplyLibrary.Shared, cancellationToken)))
            return NotFound();
        return Redirect("/Replies");
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Canned = await library.CannedAsync(Me, null, cancellationToken);
        Macros = await library.MacrosAsync(Me, cancellationToken);
    }

    public static string FormatActions(IEnumerable<MacroAction> actions) =>
        string.Join('\n', actions.Select(a => $"{a.Kind}: {a.Value}"));

    /// <summary>"kind: value" lines; other lines continue the previous action (multi-line replies and notes).</summary>
    public static List<MacroAction> ParseActions(string? text)
    {
        var actions = new List<MacroAction>();
        foreach (var raw in (text ?? "").Replace("\r\n", "\n").Split('\n'))
        {
            var colon = raw.IndexOf(':');
            var kind = colon > 0 ? raw[..colon].Trim().ToLowerInvariant() : null;
            if (kind is not null && MacroActionKinds.All.Contains(kind))
                actions.Add(new MacroAction(kind, raw[(colon + 1)..].Trim()));
            else if (actions.Count > 0 && actions[^1].Kind is MacroActionKinds.Reply or MacroActionKinds.Note)
                actions[^1] = actions[^1] with { Value = actions[^1].Value + "\n" + raw };
            else if (raw.Trim().Length > 0)
                actions.Add(new MacroAction(kind ?? raw.Trim(), colon > 0 ? raw[(colon + 1)..].Trim() : ""));
        }
        return [.. actions.Select(a => a with { Value = a.Value.TrimEnd() })];
    }
}
