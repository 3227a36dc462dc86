using Crm.Service.Contracts;
using Ical.Net;
using Ical.Net.DataTypes;

namespace Crm.Service.Infrastructure.Routing;

/// <summary>
/// Reads holidays from an iCalendar (.ics) file, as public-holiday feeds publish them: every all-day VEVENT is a
/// holiday on each of its days (DTSTART to DTEND, exclusive), and a recurring one (RRULE=YEARLY) on each occurrence
/// in the years asked for. Timed events are not holidays and are skipped.
/// </summary>
public static class HolidayImport
{
    public const int MaxBytes = 1024 * 1024;
    public const int MaxDays = 5000;
    /// <summary>Bounds on the work a file can ask for (a holiday feed has tens of events, each a day or a few).</summary>
    public const int MaxEvents = 2000;
    public const int MaxEventDays = 31;
    public const int MaxOccurrences = 20_000;
    public const int EarliestRecurrenceYear = 1900;

    /// <exception cref="DomainException">(Invalid) not an iCalendar file, too large, or more than <see cref="MaxDays"/> days.</exception>
    public static IReadOnlyList<DateOnly> Parse(string ics, int fromYear, int toYear, CancellationToken cancellationToken = default)
    {
        if (ics.Length > MaxBytes)
            throw new DomainException(DomainErrorKind.Invalid, $"The calendar file is larger than {MaxBytes / 1024} KiB.", "ics");
        Calendar? calendar;
        try
        {
            calendar = Calendar.Load(ics);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new DomainException(DomainErrorKind.Invalid, $"Not an iCalendar file ({ex.Message}); export the holidays as .ics.", "ics");
        }
        if (calendar is null)
            throw new DomainException(DomainErrorKind.Invalid, "Not an iCalendar file: no VCALENDAR found.", "ics");
        var from = new DateOnly(fromYear, 1, 1);
        var to = new DateOnly(toYear, 12, 31);
        var days = new SortedSet<DateOnly>();
        if (calendar.Events.Count > MaxEvents)
            throw Refused($"The file has {calendar.Events.Count} events; a holiday calendar has at most {MaxEvents}.");
        var occurrences = 0;
        foreach (var holiday in calendar.Events)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (holiday.DtStart is not { HasTime: false } start)
                continue;
            var length = holiday.DtEnd is { HasTime: false } end ? Math.Max(1, end.Date.DayNumber - start.Date.DayNumber) : 1;
            if (length > MaxEventDays)
                throw Refused($"The event '{holiday.Summary}' lasts {length} days; a holiday lasts at most {MaxEventDays}.");
            IEnumerable<DateOnly> starts;
            if (holiday.RecurrenceRule is { } rule)
            {
                // Holidays recur yearly; a daily rule from year 1 would have the evaluator walk millions of steps.
                if (rule.Frequency != FrequencyType.Yearly || start.Date.Year < EarliestRecurrenceYear)
                    throw Refused($"The event '{holiday.Summary}' recurs {rule.Frequency.ToString().ToLowerInvariant()} from {start.Date:yyyy-MM-dd}; only yearly holidays from {EarliestRecurrenceYear} on are imported.");
                starts = holiday.GetOccurrences(new CalDateTime(from.AddDays(-length))).Select(o => o.Period.StartTime.Date).TakeWhile(d => d <= to);
            }
            else
                starts = [start.Date];
            try
            {
                foreach (var first in starts)
                {
                    if (++occurrences > MaxOccurrences)
                        throw Refused($"The file names more than {MaxOccurrences} holiday occurrences in {fromYear}-{toYear}.");
                    for (var i = 0; i < length; i++)
                    {
                        var day = first.AddDays(i);
                        if (day < from || day > to)
                            continue;
                        days.Add(day);
                        if (days.Count > MaxDays)
                            throw Refused($"The calendar names more than {MaxDays} holidays in {fromYear}-{toYear}.");
                    }
                }
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
            {
                throw Refused($"The event '{holiday.Summary}' cannot be read as a holiday ({ex.Message}).");
            }
        }
        return [.. days];
    }

    private static DomainException Refused(string message) => new(DomainErrorKind.Invalid, message + " Export the public holidays as all-day events.", "ics");
}
