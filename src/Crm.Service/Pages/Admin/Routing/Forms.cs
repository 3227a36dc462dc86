using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Crm.Service.Api;
using Crm.Service.Contracts;

namespace Crm.Service.Pages.Admin.Routing;

// The routing admin pages' form fields. They only carry what the admin API's body carries (lists as comma- or
// line-separated text); every rule about the values is the API handler's (RoutingApi), which the pages call.

/// <summary>The shared <see cref="TicketConditions"/> of a routing rule or an SLA policy.</summary>
public sealed class ConditionsForm
{
    public List<ChannelKind> Channels { get; set; } = [];
    [StringLength(20_000)] public string? ChannelAccounts { get; set; }
    [StringLength(20_000)] public string? CustomerTags { get; set; }
    [StringLength(20_000)] public string? Segments { get; set; }
    [StringLength(20_000)] public string? Languages { get; set; }
    [StringLength(20_000)] public string? Keywords { get; set; }
    public List<TicketPriority> Priorities { get; set; } = [];
    [StringLength(20_000)] public string? Teams { get; set; }
    public TimeSpan? From { get; set; }
    public TimeSpan? To { get; set; }
    [StringLength(100)] public string? TimeZone { get; set; }
    [StringLength(64)] public string? CalendarId { get; set; }
    public bool? InBusinessHours { get; set; }

    public TicketConditions ToConditions() => new()
    {
        Channels = [.. Channels.Distinct()],
        ChannelAccounts = FormLists.Split(ChannelAccounts),
        CustomerTags = FormLists.Split(CustomerTags),
        Segments = FormLists.Split(Segments),
        Languages = FormLists.Split(Languages),
        Keywords = FormLists.Split(Keywords),
        Priorities = [.. Priorities.Distinct()],
        Teams = FormLists.Split(Teams),
        From = From,
        To = To,
        TimeZone = FormLists.NullIfBlank(TimeZone),
        CalendarId = FormLists.NullIfBlank(CalendarId),
        InBusinessHours = InBusinessHours,
    };

    public static ConditionsForm Of(TicketConditions c) => new()
    {
        Channels = [.. c.Channels],
        ChannelAccounts = FormLists.Join(c.ChannelAccounts),
        CustomerTags = FormLists.Join(c.CustomerTags),
        Segments = FormLists.Join(c.Segments),
        Languages = FormLists.Join(c.Languages),
        Keywords = FormLists.Join(c.Keywords),
        Priorities = [.. c.Priorities],
        Teams = FormLists.Join(c.Teams),
        From = c.From,
        To = c.To,
        TimeZone = c.TimeZone,
        CalendarId = c.CalendarId,
        InBusinessHours = c.InBusinessHours,
    };
}

public sealed class RuleForm
{
    [StringLength(64)] public string? Id { get; set; }
    [StringLength(200)] public string? Name { get; set; }
    public int? Order { get; set; }
    public bool Enabled { get; set; } = true;
    [StringLength(64)] public string? Team { get; set; }
    public TicketPriority? Priority { get; set; }
    [StringLength(5_000)] public string? AddTags { get; set; }
    public ConditionsForm Conditions { get; set; } = new();

    public RoutingRuleRequest ToRequest() =>
        new(Name, Order, Enabled, Conditions.ToConditions(), FormLists.NullIfBlank(Team), Priority, FormLists.Split(AddTags));

    public static RuleForm Of(RoutingRule rule) => new()
    {
        Id = rule.Id,
        Name = rule.Name,
        Order = rule.Order,
        Enabled = rule.Enabled,
        Team = rule.Team,
        Priority = rule.Priority,
        AddTags = FormLists.Join(rule.AddTags),
        Conditions = ConditionsForm.Of(rule.Conditions),
    };
}

public sealed class TargetRow
{
    public TicketPriority Priority { get; set; }
    public TimeSpan? FirstResponse { get; set; }
    public TimeSpan? NextResponse { get; set; }
    public TimeSpan? Resolution { get; set; }
}

public sealed class EscalationRow
{
    /// <summary>Unticked rows are left out (the form shows the stored levels plus one empty row, and "add level" adds
    /// rows up to <see cref="PolicyForm.MaxEscalations"/>).</summary>
    public bool Use { get; set; }
    public TimeSpan? After { get; set; }
    public bool NotifyAssignee { get; set; }
    public bool NotifySupervisors { get; set; }
    public TicketPriority? RaisePriorityTo { get; set; }
    [StringLength(64)] public string? ReassignToTeam { get; set; }
    [StringLength(100)] public string? AddTag { get; set; }
}

public sealed class PolicyForm
{
    /// <summary>As many rows as the admin API takes levels.</summary>
    public const int MaxEscalations = RoutingApi.MaxEscalations;

    [StringLength(64)] public string? Id { get; set; }
    [StringLength(200)] public string? Name { get; set; }
    public int? Order { get; set; }
    [StringLength(64)] public string? CalendarId { get; set; }
    /// <summary>One row per priority; a row with no time is left out.</summary>
    public List<TargetRow> Targets { get; set; } = [.. Enum.GetValues<TicketPriority>().Select(p => new TargetRow { Priority = p })];
    public double? WarningAt { get; set; } = 0.8;
    public List<EscalationRow> Escalations { get; set; } =
        [new EscalationRow { Use = true, After = TimeSpan.Zero, NotifyAssignee = true, NotifySupervisors = true }, new()];

    /// <summary>Whether "add level" is offered: fewer rows than the API takes levels.</summary>
    public bool CanAddLevel => Escalations.Count < MaxEscalations;

    /// <summary>"Add level": one more empty row, up to <see cref="MaxEscalations"/>.</summary>
    public void AddLevel()
    {
        if (CanAddLevel)
            Escalations.Add(new EscalationRow());
    }
    public ConditionsForm Conditions { get; set; } = new();

    public SlaPolicyRequest ToRequest() => new(Name, Order, Conditions.ToConditions(), FormLists.NullIfBlank(CalendarId),
        [.. Targets.Where(t => t.FirstResponse is not null || t.NextResponse is not null || t.Resolution is not null)
            .Select(t => new SlaTarget(t.Priority, t.FirstResponse, t.NextResponse, t.Resolution))],
        WarningAt,
        [.. Escalations.Where(e => e.Use).Select(e => new EscalationLevel
        {
            After = e.After ?? TimeSpan.Zero,
            NotifyAssignee = e.NotifyAssignee,
            NotifySupervisors = e.NotifySupervisors,
            RaisePriorityTo = e.RaisePriorityTo,
            ReassignToTeam = FormLists.NullIfBlank(e.ReassignToTeam),
            AddTag = FormLists.NullIfBlank(e.AddTag),
        })]);

    public static PolicyForm Of(SlaPolicy policy)
    {
        var escalations = policy.Escalations.Select(e => new EscalationRow
        {
            Use = true, After = e.After, NotifyAssignee = e.NotifyAssignee, NotifySupervisors = e.NotifySupervisors,
            RaisePriorityTo = e.RaisePriorityTo, ReassignToTeam = e.ReassignToTeam, AddTag = e.AddTag,
        }).ToList();
        // The stored levels and one empty row to add a level in (none once the API's maximum is reached).
        if (escalations.Count < MaxEscalations)
            escalations.Add(new EscalationRow());
        return new PolicyForm
        {
            Id = policy.Id,
            Name = policy.Name,
            Order = policy.Order,
            CalendarId = policy.CalendarId,
            Targets = [.. Enum.GetValues<TicketPriority>().Select(p => policy.Targets.FirstOrDefault(t => t.Priority == p) is { } t
                ? new TargetRow { Priority = p, FirstResponse = t.FirstResponse, NextResponse = t.NextResponse, Resolution = t.Resolution }
                : new TargetRow { Priority = p })],
            WarningAt = policy.WarningAt,
            Escalations = escalations,
            Conditions = ConditionsForm.Of(policy.Conditions),
        };
    }
}

/// <summary>A business calendar: per weekday its open hours as text ("09:00-12:00, 13:00-17:00"), holidays one date a line.</summary>
public sealed class CalendarForm
{
    [StringLength(64)] public string? Id { get; set; }
    [StringLength(200)] public string? Name { get; set; }
    [StringLength(100)] public string? TimeZone { get; set; } = "UTC";
    /// <summary>Monday first; index = position in <see cref="Week"/>.</summary>
    public List<string?> Hours { get; set; } = [.. Week.Select(d => d is DayOfWeek.Saturday or DayOfWeek.Sunday ? "" : "09:00-17:00")];
    [StringLength(100_000)] public string? Holidays { get; set; }

    public static readonly DayOfWeek[] Week =
        [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday, DayOfWeek.Saturday, DayOfWeek.Sunday];

    /// <summary>The API body, or the form key and message of the first text that is not hours or a date.</summary>
    public (CalendarRequest? Request, string? Key, string? Error) ToRequest()
    {
        var ranges = new List<BusinessHoursRange>();
        for (var i = 0; i < Week.Length; i++)
            foreach (var part in FormLists.Split(i < Hours.Count ? Hours[i] : null))
            {
                var bounds = part.Split('-', 2, StringSplitOptions.TrimEntries);
                if (bounds.Length != 2 || !TryTime(bounds[0], out var open) || !TryTime(bounds[1], out var close))
                    return (null, $"Hours[{i}]", $"'{part}' is not a range of hours such as 09:00-17:00.");
                ranges.Add(new BusinessHoursRange(Week[i], open, close));
            }
        var holidays = new List<DateOnly>();
        foreach (var text in FormLists.Split(Holidays))
        {
            if (!DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
                return (null, nameof(Holidays), $"'{text}' is not a date such as 2026-12-25.");
            holidays.Add(day);
        }
        return (new CalendarRequest(Name, FormLists.NullIfBlank(TimeZone), ranges, holidays), null, null);
    }

    // "24:00" closes at midnight; TimeSpan.Parse reads it as 24 days.
    private static bool TryTime(string text, out TimeSpan time)
    {
        if (text is "24:00" or "24:00:00")
        {
            time = TimeSpan.FromHours(24);
            return true;
        }
        return TimeSpan.TryParseExact(text, [@"h\:mm", @"hh\:mm", @"hh\:mm\:ss"], CultureInfo.InvariantCulture, out time);
    }

    public static CalendarForm Of(BusinessCalendarDefinition calendar) => new()
    {
        Id = calendar.Id,
        Name = calendar.Name,
        TimeZone = calendar.TimeZone,
        Hours = [.. Week.Select(d => string.Join(", ", calendar.Hours.Where(h => h.Day == d).OrderBy(h => h.Open)
            .Select(h => $"{Clock(h.Open)}-{Clock(h.Close)}")))],
        Holidays = string.Join("\n", calendar.Holidays.Select(h => h.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))),
    };

    private static string Clock(TimeSpan time) => $"{(int)time.TotalHours:00}:{time.Minutes:00}";
}

public static class FormLists
{
    public static List<string> Split(string? text) =>
        [.. (text ?? "").Split([',', '\n', '\r', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    public static string Join(IEnumerable<string> values) => string.Join(", ", values);

    public static string? NullIfBlank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();

    /// <summary>The form key of an API problem's <c>field</c> ("conditions.from" → "Rule.Conditions.From"); an
    /// unknown field goes to the form's summary.</summary>
    public static string Key(string prefix, string? field, IReadOnlyDictionary<string, string>? renames = null)
    {
        if (string.IsNullOrEmpty(field))
            return "";
        if (renames is not null && renames.TryGetValue(field, out var renamed))
            return prefix + "." + renamed;
        return prefix + "." + string.Join('.', field.Split('.').Select(p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]));
    }
}
