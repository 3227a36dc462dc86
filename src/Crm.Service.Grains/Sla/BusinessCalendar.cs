using Crm.Service.Contracts;

namespace Crm.Service.Grains.Sla;

/// <summary>
/// Business-time arithmetic over a <see cref="BusinessCalendarDefinition"/>: which instants are open, business time
/// between two instants, and the instant a given amount of business time after a start. Pure and immutable.
/// </summary>
/// <remarks>
/// Opening hours are local wall-clock times in the calendar's zone, turned into instants day by day, so a business day
/// that contains a DST change is as long as the clock really ran (09:00-17:00 is always 8 h; 00:00-24:00 is 23 h or
/// 25 h). A local time that does not exist (spring-forward gap) is shifted forward by the gap, as NodaTime's lenient
/// resolver does; a local time that exists twice (fall-back) is the earlier instant.
/// </remarks>
public sealed class BusinessCalendar
{
    /// <summary>How far ahead an addition looks for open hours before it gives up (a calendar of only holidays).</summary>
    public const int MaxDaysAhead = 5 * 366;

    private static readonly TimeSpan Day = TimeSpan.FromDays(1);

    private readonly TimeZoneInfo _zone;
    private readonly (TimeSpan Open, TimeSpan Close)[][] _hours;
    private readonly HashSet<DateOnly> _holidays;

    private BusinessCalendar(string id, TimeZoneInfo zone, (TimeSpan, TimeSpan)[][] hours, HashSet<DateOnly> holidays)
    {
        Id = id;
        _zone = zone;
        _hours = hours;
        _holidays = holidays;
    }

    public string Id { get; }

    /// <summary>The calendar's time zone (a routing rule's time-of-day window counts in it).</summary>
    public TimeZoneInfo Zone => _zone;

    public static BusinessCalendar AlwaysOpen { get; } = From(BusinessCalendarDefinition.AlwaysOpen);

    /// <summary>Checks and compiles a definition.</summary>
    /// <exception cref="DomainException">(Invalid) an unknown time zone, hours outside 00:00-24:00 or closing before they
    /// open, or no open hours on any day.</exception>
    public static BusinessCalendar From(BusinessCalendarDefinition definition)
    {
        var zone = FindZone(definition.TimeZone);
        var hours = new (TimeSpan Open, TimeSpan Close)[7][];
        foreach (var day in Enum.GetValues<DayOfWeek>())
        {
            var ranges = definition.Hours.Where(h => h.Day == day).OrderBy(h => h.Open).ToList();
            var merged = new List<(TimeSpan Open, TimeSpan Close)>();
            foreach (var range in ranges)
            {
                if (range.Open < TimeSpan.Zero || range.Close > Day || range.Close <= range.Open)
                    throw new DomainException(DomainErrorKind.Invalid,
                        $"Hours on {day} must open before they close, within 00:00-24:00 (got {range.Open:hh\\:mm}-{range.Close:c}).", "hours");
                if (merged.Count > 0 && range.Open <= merged[^1].Close)
                    merged[^1] = (merged[^1].Open, range.Close > merged[^1].Close ? range.Close : merged[^1].Close);
                else
                    merged.Add((range.Open, range.Close));
            }
            hours[(int)day] = [.. merged];
        }
        if (hours.All(h => h.Length == 0))
            throw new DomainException(DomainErrorKind.Invalid, "A calendar needs open hours on at least one day of the week.", "hours");
        return new BusinessCalendar(definition.Id, zone, hours, [.. definition.Holidays]);
    }

    /// <summary>The zone by IANA id (Windows ids work too where the OS knows them).</summary>
    /// <exception cref="DomainException">(Invalid) the id names no zone this machine knows.</exception>
    public static TimeZoneInfo FindZone(string id)
    {
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        // A directory of zoneinfo ("America") surfaces as a SecurityException or an I/O error on Linux.
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException or ArgumentException or System.Security.SecurityException or IOException or UnauthorizedAccessException)
        {
            throw new DomainException(DomainErrorKind.Invalid, $"'{id}' is not a known time zone; use an IANA id such as Europe/Berlin.", "timeZone");
        }
    }

    public bool IsHoliday(DateOnly localDate) => _holidays.Contains(localDate);

    public bool IsOpen(DateTimeOffset at)
    {
        foreach (var (start, end) in OpenPeriodsFrom(at))
            return start <= at && at < end;
        return false;
    }

    /// <summary>The instant <paramref name="amount"/> of business time after <paramref name="start"/>. A start outside
    /// open hours counts from the next opening; an amount that runs out exactly at a closing is that closing.</summary>
    /// <exception cref="InvalidOperationException">No open hours within <see cref="MaxDaysAhead"/> days.</exception>
    public DateTimeOffset Add(DateTimeOffset start, TimeSpan amount)
    {
        if (amount <= TimeSpan.Zero)
            return start;
        var left = amount;
        foreach (var (open, close) in OpenPeriodsFrom(start))
        {
            var from = open > start ? open : start;
            var available = close - from;
            if (available >= left)
                return from + left;
            left -= available;
        }
        throw new InvalidOperationException($"Calendar '{Id}' has no open hours within {MaxDaysAhead} days of {start:O}.");
    }

    /// <summary>Business time in [<paramref name="from"/>, <paramref name="to"/>); zero when <paramref name="to"/> is not after <paramref name="from"/>.</summary>
    public TimeSpan Between(DateTimeOffset from, DateTimeOffset to)
    {
        if (to <= from)
            return TimeSpan.Zero;
        var total = TimeSpan.Zero;
        foreach (var (open, close) in OpenPeriodsFrom(from))
        {
            if (open >= to)
                break;
            var start = open > from ? open : from;
            var end = close < to ? close : to;
            if (end > start)
                total += end - start;
        }
        return total;
    }

    /// <summary>Open periods as instants, in order, from the one containing (or the first after) <paramref name="from"/>.</summary>
    public IEnumerable<(DateTimeOffset Open, DateTimeOffset Close)> OpenPeriodsFrom(DateTimeOffset from)
    {
        var date = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(from, _zone).DateTime);
        for (var i = 0; i <= MaxDaysAhead; i++, date = date.AddDays(1))
        {
            if (_holidays.Contains(date))
                continue;
            foreach (var (open, close) in _hours[(int)date.DayOfWeek])
            {
                var end = ToInstant(date, close);
                if (end <= from)
                    continue;
                var start = ToInstant(date, open);
                if (end > start)
                    yield return (start, end);
            }
        }
    }

    private DateTimeOffset ToInstant(DateOnly date, TimeSpan timeOfDay)
    {
        var local = date.ToDateTime(TimeOnly.MinValue).Add(timeOfDay);
        if (_zone.IsInvalidTime(local))
            // In a spring-forward gap: the offset before the gap moves it forward by the gap's length.
            return new DateTimeOffset(local, _zone.GetUtcOffset(local.AddHours(-12))).ToUniversalTime();
        if (_zone.IsAmbiguousTime(local))
            return new DateTimeOffset(local, _zone.GetAmbiguousTimeOffsets(local).Max()).ToUniversalTime();
        return new DateTimeOffset(local, _zone.GetUtcOffset(local)).ToUniversalTime();
    }
}
