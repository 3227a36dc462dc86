using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;

namespace Crm.Service.Infrastructure.Replies;

/// <summary>A canned response: a reply text with placeholders, personal (OwnerId = the person's account id) or shared (OwnerId = "").</summary>
public sealed class CannedResponseRecord
{
    public Guid Id { get; set; }
    public string OwnerId { get; set; } = "";
    /// <summary>What the agent types after "/" in the reply box (letters, digits, '-', '_').</summary>
    public required string Shortcut { get; set; }
    public required string Title { get; set; }
    public required string Text { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public string UpdatedBy { get; set; } = "";
}

/// <summary>A macro: a named list of actions applied to a ticket at once. Personal or shared like canned responses.</summary>
public sealed class MacroRecord
{
    public Guid Id { get; set; }
    public string OwnerId { get; set; } = "";
    public required string Name { get; set; }
    public List<MacroAction> Actions { get; set; } = [];
    public DateTimeOffset UpdatedAt { get; set; }
    public string UpdatedBy { get; set; } = "";
}

/// <summary>One step of a macro. Kinds: status, priority, team, assignee ("me" = whoever applies it, "" = nobody),
/// tag (adds one), note (internal note text), reply (reply text). Note and reply texts take placeholders.</summary>
public sealed record MacroAction(string Kind, string Value);

public static class MacroActionKinds
{
    public const string Status = "status", Priority = "priority", Team = "team", Assignee = "assignee", Tag = "tag", Note = "note", Reply = "reply";
    public static readonly IReadOnlyList<string> All = [Status, Priority, Team, Assignee, Tag, Note, Reply];
}

/// <summary>What a placeholder is filled with for one ticket and one agent.</summary>
public sealed record PlaceholderValues(string? CustomerName, long TicketNumber, string? TicketSubject, string AgentName, string AgentEmail);

/// <summary>
/// The placeholders of canned responses and macros: <c>{{customer.name}}</c>, <c>{{customer.first_name}}</c>,
/// <c>{{ticket.number}}</c>, <c>{{ticket.subject}}</c>, <c>{{agent.name}}</c>, <c>{{agent.email}}</c>. Filled in one
/// pass, so a value that itself looks like a placeholder (a customer named "{{agent.email}}") stays text. Unknown
/// names are refused when the text is saved, so a typo never reaches a customer.
/// </summary>
public static partial class Placeholders
{
    public static readonly IReadOnlyList<string> Names = ["customer.name", "customer.first_name", "ticket.number", "ticket.subject", "agent.name", "agent.email"];

    [GeneratedRegex(@"\{\{\s*([a-z_.]+)\s*\}\}", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    public static IReadOnlyList<string> Unknown(string text) =>
        [.. Pattern().Matches(text).Select(m => m.Groups[1].Value).Where(n => !Names.Contains(n)).Distinct()];

    public static string Render(string text, PlaceholderValues values) => Pattern().Replace(text, m => m.Groups[1].Value switch
    {
        "customer.name" => values.CustomerName is { Length: > 0 } name ? name : "customer",
        "customer.first_name" => values.CustomerName is { Length: > 0 } full ? full.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0] : "customer",
        "ticket.number" => "#" + values.TicketNumber.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "ticket.subject" => values.TicketSubject ?? "",
        "agent.name" => values.AgentName,
        "agent.email" => values.AgentEmail,
        _ => m.Value,
    });
}

/// <summary>Canned responses and macros in the store. Callers decide who may change shared ones (Admin, Supervisor).</summary>
public sealed partial class ReplyLibrary(IDbContextFactory<CrmDbContext> contexts, TimeProvider time)
{
    public const int MaxTextLength = 20_000;
    public const int MaxTitleLength = 200;
    public const int MaxActions = 20;
    /// <summary>Per person (and for the shared set): the ticket page lists them all.</summary>
    public const int MaxPerOwner = 500;
    public const string Shared = "";

    [GeneratedRegex("^[A-Za-z0-9_-]{1,40}$")]
    private static partial Regex ShortcutPattern();

    /// <summary>Shared ones and the person's own, shortcut order; <paramref name="search"/> matches shortcut, title or text.</summary>
    public async Task<IReadOnlyList<CannedResponseRecord>> CannedAsync(string ownerId, string? search, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var query = db.CannedResponses.AsNoTracking().Where(c => c.OwnerId == Shared || c.OwnerId == ownerId);
        if (search?.Trim().TrimStart('/') is { Length: > 0 } q)
        {
            var like = "%" + q.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_") + "%";
            query = query.Where(c => EF.Functions.Like(c.Shortcut, like, "\\") || EF.Functions.Like(c.Title, like, "\\") || EF.Functions.Like(c.Text, like, "\\"));
        }
        return await query.OrderBy(c => c.Shortcut).ThenBy(c => c.OwnerId).Take(2 * MaxPerOwner).ToListAsync(cancellationToken);
    }

    public async Task<CannedResponseRecord?> FindCannedAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.CannedResponses.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id, cancellationToken);
    }

    /// <summary>Creates (id null) or replaces one; returns the saved row or the error (field, message).</summary>
    public async Task<(CannedResponseRecord? Saved, (string Field, string Message)? Error)> SaveCannedAsync(
        Guid? id, string ownerId, string? shortcut, string? title, string? text, string actor, CancellationToken cancellationToken)
    {
        shortcut = shortcut?.Trim().TrimStart('/');
        title = title?.Trim();
        if (shortcut is null || !ShortcutPattern().IsMatch(shortcut))
            return (null, ("shortcut", "The shortcut is 1 to 40 letters, digits, '-' or '_' (typed after '/' in the reply box)."));
        if (string.IsNullOrEmpty(title) || title.Length > MaxTitleLength)
            return (null, ("title", $"Give a title of at most {MaxTitleLength} characters."));
        if (string.IsNullOrWhiteSpace(text) || text.Length > MaxTextLength)
            return (null, ("text", $"Write the text (at most {MaxTextLength} characters)."));
        if (Placeholders.Unknown(text) is { Count: > 0 } unknown)
            return (null, ("text", $"Unknown placeholder {{{{{unknown[0]}}}}}; use one of {string.Join(", ", Placeholders.Names.Select(n => "{{" + n + "}}"))}."));
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (await db.CannedResponses.AnyAsync(c => c.OwnerId == ownerId && c.Shortcut == shortcut && c.Id != id, cancellationToken))
            return (null, ("shortcut", $"/{shortcut} is taken; choose another shortcut."));
        CannedResponseRecord? row;
        if (id is { } existing)
        {
            row = await db.CannedResponses.FirstOrDefaultAsync(c => c.Id == existing && c.OwnerId == ownerId, cancellationToken);
            if (row is null)
                return (null, ("id", "No such canned response."));
        }
        else
        {
            if (await db.CannedResponses.CountAsync(c => c.OwnerId == ownerId, cancellationToken) >= MaxPerOwner)
                return (null, ("shortcut", $"At most {MaxPerOwner} canned responses per person (and shared); delete one first."));
            row = new CannedResponseRecord { Id = Guid.CreateVersion7(), OwnerId = ownerId, Shortcut = shortcut, Title = title, Text = text };
            db.CannedResponses.Add(row);
        }
        row.Shortcut = shortcut;
        row.Title = title;
        row.Text = text;
        row.UpdatedAt = time.GetUtcNow();
        row.UpdatedBy = actor;
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // Two saves of one shortcut at once: the unique index keeps one.
            return (null, ("shortcut", $"/{shortcut} is taken; choose another shortcut."));
        }
        return (row, null);
    }

    public async Task<bool> DeleteCannedAsync(Guid id, string ownerId, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.CannedResponses.Where(c => c.Id == id && c.OwnerId == ownerId).ExecuteDeleteAsync(cancellationToken) > 0;
    }

    public async Task<IReadOnlyList<MacroRecord>> MacrosAsync(string ownerId, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Macros.AsNoTracking().Where(m => m.OwnerId == Shared || m.OwnerId == ownerId)
            .OrderBy(m => m.Name).ThenBy(m => m.OwnerId).Take(2 * MaxPerOwner).ToListAsync(cancellationToken);
    }

    public async Task<MacroRecord?> FindMacroAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Macros.AsNoTracking().FirstOrDefaultAsync(m => m.Id == id, cancellationToken);
    }

    /// <summary>Checks a macro's actions (kinds, values, lengths); null when they are valid.</summary>
    public static string? CheckActions(IReadOnlyList<MacroAction>? actions)
    {
        if (actions is not { Count: > 0 })
            return "Add at least one action.";
        if (actions.Count > MaxActions)
            return $"At most {MaxActions} actions.";
        foreach (var (action, i) in actions.Select((a, i) => (a, i + 1)))
        {
            var value = action.Value ?? "";
            switch (action.Kind)
            {
                case MacroActionKinds.Status when !Enum.TryParse<Contracts.TicketStatus>(value, ignoreCase: true, out var s) || !Enum.IsDefined(s) || int.TryParse(value, out _):
                    return $"Action {i}: '{value}' is not a status ({string.Join(", ", Enum.GetNames<Contracts.TicketStatus>())}).";
                case MacroActionKinds.Priority when !Enum.TryParse<Contracts.TicketPriority>(value, ignoreCase: true, out var p) || !Enum.IsDefined(p) || int.TryParse(value, out _):
                    return $"Action {i}: '{value}' is not a priority ({string.Join(", ", Enum.GetNames<Contracts.TicketPriority>())}).";
                case MacroActionKinds.Tag when value.Trim().Length is 0 or > 64:
                    return $"Action {i}: a tag is 1 to 64 characters.";
                case MacroActionKinds.Team or MacroActionKinds.Assignee when value.Length > 200:
                    return $"Action {i}: at most 200 characters.";
                case MacroActionKinds.Note or MacroActionKinds.Reply when value.Trim().Length == 0 || value.Length > MaxTextLength:
                    return $"Action {i}: write the text (at most {MaxTextLength} characters).";
                case MacroActionKinds.Note or MacroActionKinds.Reply when Placeholders.Unknown(value) is { Count: > 0 } unknown:
                    return $"Action {i}: unknown placeholder {{{{{unknown[0]}}}}}; use one of {string.Join(", ", Placeholders.Names.Select(n => "{{" + n + "}}"))}.";
                case var kind when !MacroActionKinds.All.Contains(kind):
                    return $"Action {i}: '{kind}' is not an action ({string.Join(", ", MacroActionKinds.All)}).";
            }
        }
        if (actions.Count(a => a.Kind == MacroActionKinds.Reply) > 1)
            return "A macro sends at most one reply.";
        return null;
    }

    public async Task<(MacroRecord? Saved, (string Field, string Message)? Error)> SaveMacroAsync(
        Guid? id, string ownerId, string? name, IReadOnlyList<MacroAction>? actions, string actor, CancellationToken cancellationToken)
    {
        name = name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > MaxTitleLength)
            return (null, ("name", $"Give the macro a name of at most {MaxTitleLength} characters."));
        if (CheckActions(actions) is { } problem)
            return (null, ("actions", problem));
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        MacroRecord? row;
        if (id is { } existing)
        {
            row = await db.Macros.FirstOrDefaultAsync(m => m.Id == existing && m.OwnerId == ownerId, cancellationToken);
            if (row is null)
                return (null, ("id", "No such macro."));
        }
        else
        {
            if (await db.Macros.CountAsync(m => m.OwnerId == ownerId, cancellationToken) >= MaxPerOwner)
                return (null, ("name", $"At most {MaxPerOwner} macros per person (and shared); delete one first."));
            row = new MacroRecord { Id = Guid.CreateVersion7(), OwnerId = ownerId, Name = name };
            db.Macros.Add(row);
        }
        row.Name = name;
        row.Actions = [.. actions!.Select(a => a with { Kind = a.Kind, Value = a.Value ?? "" })];
        row.UpdatedAt = time.GetUtcNow();
        row.UpdatedBy = actor;
        await db.SaveChangesAsync(cancellationToken);
        return (row, null);
    }

    public async Task<bool> DeleteMacroAsync(Guid id, string ownerId, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Macros.Where(m => m.Id == id && m.OwnerId == ownerId).ExecuteDeleteAsync(cancellationToken) > 0;
    }

    internal static void Configure(ModelBuilder model)
    {
        model.Entity<CannedResponseRecord>(e =>
        {
            e.ToTable("CannedResponses");
            e.HasKey(c => c.Id);
            e.HasIndex(c => new { c.OwnerId, c.Shortcut }).IsUnique();
            e.Property(c => c.Shortcut).HasMaxLength(40);
            e.Property(c => c.Title).HasMaxLength(MaxTitleLength);
        });
        model.Entity<MacroRecord>(e =>
        {
            e.ToTable("Macros");
            e.HasKey(m => m.Id);
            e.HasIndex(m => new { m.OwnerId, m.Name });
            e.Property(m => m.Actions).HasConversion(
                v => JsonSerializer.Serialize(v, JsonSerializerOptions.Web),
                v => JsonSerializer.Deserialize<List<MacroAction>>(v, JsonSerializerOptions.Web) ?? new(),
                new ValueComparer<List<MacroAction>>((a, b) => a!.SequenceEqual(b!), v => v.Count, v => v.ToList()));
        });
    }
}
