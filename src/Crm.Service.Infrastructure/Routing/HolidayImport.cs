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

    /// <exception cref="DomainException">(Invalid) not an iCalendar file, too large, or more than <see cref="MaxDays"/> days.</exception>
    public static IReadOnlyList<DateOnly> Parse(string ics, int fromYear, int toYear)
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
        foreach (var holiday in calendar.Events)
        {
            if (holiday.DtStart is not { HasTime: false } start)
                continue;
            var length = holiday.DtEnd is { HasTime: false } end ? Math.Max(1, end.Date.DayNumber - start.Date.DayNumber) : 1;
            IEnumerable<DateOnly> starts = holiday.RecurrenceRule is not null
                ? holiday.GetOccurrences(new CalDateTime(from.AddDays(-length)))
                    .Select(o => o.Period.StartTime.Date)
                    .TakeWhile(d => d <= to)
                : [start.Date];
            foreach (var first in starts)
                for (var i = 0; i < length; i++)
                {
                    var day = first.AddDays(i);
                    if (day < from || day > to)
                        continue;
                    days.Add(day);
                    if (days.Count > MaxDays)
                        throw new DomainException(DomainErrorKind.Invalid, $"The calendar names more than {MaxDays} holidays in {fromYear}-{toYear}.", "ics");
                }
        }
        return [.. days];
    }
}
