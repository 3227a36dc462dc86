using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Routing;

namespace Crm.Service.Tests.Routing;

public sealed class BusinessCalendarTests
{
    private static readonly DayOfWeek[] Weekdays = [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday];

    private static BusinessCalendar Calendar(string zone, TimeSpan open, TimeSpan close, IEnumerable<DayOfWeek>? days = null, params DateOnly[] holidays) =>
        BusinessCalendar.From(new BusinessCalendarDefinition
        {
            Id = "test",
            Name = "Test",
            TimeZone = zone,
            Hours = [.. (days ?? Weekdays).Select(d => new BusinessHoursRange(d, open, close))],
            Holidays = holidays,
        });

    private static BusinessCalendar NineToFive(string zone, params DateOnly[] holidays) =>
        Calendar(zone, TimeSpan.FromHours(9), TimeSpan.FromHours(17), null, holidays);

    private static BusinessCalendar RoundTheClock(string zone) =>
        Calendar(zone, TimeSpan.Zero, TimeSpan.FromHours(24), Enum.GetValues<DayOfWeek>());

    private static DateTimeOffset At(string iso) => DateTimeOffset.Parse(iso, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Adding_inside_one_business_day_is_plain_addition()
    {
        var berlin = NineToFive("Europe/Berlin");
        Assert.Equal(At("2026-03-24T13:00:00+01:00"), berlin.Add(At("2026-03-24T10:00:00+01:00"), TimeSpan.FromHours(3)));
    }

    [Fact]
    public void A_target_spanning_a_weekend_and_the_spring_DST_change_lands_on_Monday_local_time()
    {
        var berlin = NineToFive("Europe/Berlin");
        // Friday 16:00 CET + 2 business hours: 1 h on Friday, 1 h on Monday (after the switch to CEST on Sunday).
        var due = berlin.Add(At("2026-03-27T16:00:00+01:00"), TimeSpan.FromHours(2));
        Assert.Equal(At("2026-03-30T10:00:00+02:00"), due);
        Assert.Equal(TimeSpan.FromHours(2), berlin.Between(At("2026-03-27T16:00:00+01:00"), due));
    }

    [Fact]
    public void A_start_outside_hours_counts_from_the_next_opening()
    {
        var berlin = NineToFive("Europe/Berlin");
        Assert.Equal(At("2026-03-30T09:30:00+02:00"), berlin.Add(At("2026-03-28T12:00:00+01:00"), TimeSpan.FromMinutes(30)));
        Assert.Equal(At("2026-03-26T09:30:00+01:00"), berlin.Add(At("2026-03-25T18:00:00+01:00"), TimeSpan.FromMinutes(30)));
        Assert.False(berlin.IsOpen(At("2026-03-28T12:00:00+01:00")));
        Assert.True(berlin.IsOpen(At("2026-03-30T09:00:00+02:00")));
    }

    [Fact]
    public void An_amount_that_runs_out_at_closing_time_is_due_at_closing_time()
    {
        var berlin = NineToFive("Europe/Berlin");
        Assert.Equal(At("2026-03-24T17:00:00+01:00"), berlin.Add(At("2026-03-24T09:00:00+01:00"), TimeSpan.FromHours(8)));
    }

    [Fact]
    public void Round_the_clock_days_are_23_and_25_hours_long_on_Berlin_DST_changes()
    {
        var berlin = RoundTheClock("Europe/Berlin");
        Assert.Equal(TimeSpan.FromHours(23), berlin.Between(At("2026-03-29T00:00:00+01:00"), At("2026-03-30T00:00:00+02:00")));
        Assert.Equal(TimeSpan.FromHours(25), berlin.Between(At("2026-10-25T00:00:00+02:00"), At("2026-10-26T00:00:00+01:00")));
        // 24 h of real waiting from Saturday noon is Sunday 13:00 local: the clock counts elapsed time, not wall time.
        Assert.Equal(At("2026-03-29T13:00:00+02:00"), berlin.Add(At("2026-03-28T12:00:00+01:00"), TimeSpan.FromHours(24)));
    }

    [Fact]
    public void New_York_hours_across_the_gap_and_the_repeated_hour()
    {
        var daily = Enum.GetValues<DayOfWeek>();
        var newYork = Calendar("America/New_York", TimeSpan.FromHours(1), TimeSpan.FromHours(4), daily);
        // 8 March 2026: 02:00 EST jumps to 03:00 EDT, so 01:00-04:00 lasts 2 h.
        Assert.Equal(TimeSpan.FromHours(2), newYork.Between(At("2026-03-08T00:00:00-05:00"), At("2026-03-09T00:00:00-04:00")));
        // 1 November 2026: 01:00-02:00 happens twice; opening at the first 01:00 EDT, closing 04:00 EST is 4 h.
        Assert.Equal(TimeSpan.FromHours(4), newYork.Between(At("2026-11-01T00:00:00-04:00"), At("2026-11-02T00:00:00-05:00")));
        Assert.Equal(At("2026-11-01T01:00:00-04:00"), newYork.OpenPeriodsFrom(At("2026-11-01T00:00:00-04:00")).First().Open);
        // Friday 6 March 15:00 EST + 3 h across the weekend of the change, weekdays 09:00-17:00.
        var office = NineToFive("America/New_York");
        Assert.Equal(At("2026-03-09T10:00:00-04:00"), office.Add(At("2026-03-06T15:00:00-05:00"), TimeSpan.FromHours(3)));
    }

    [Fact]
    public void An_opening_inside_the_spring_gap_moves_forward_by_the_gap()
    {
        var sunday = Calendar("Europe/Berlin", TimeSpan.FromHours(2.5), TimeSpan.FromHours(5), [DayOfWeek.Sunday]);
        var first = sunday.OpenPeriodsFrom(At("2026-03-29T00:00:00+01:00")).First();
        Assert.Equal(At("2026-03-29T03:30:00+02:00"), first.Open);
        Assert.Equal(At("2026-03-29T05:00:00+02:00"), first.Close);
    }

    [Fact]
    public void Shanghai_holidays_of_golden_week_are_skipped()
    {
        var golden = Enumerable.Range(1, 7).Select(d => new DateOnly(2026, 10, d)).ToArray();
        var shanghai = Calendar("Asia/Shanghai", TimeSpan.FromHours(9), TimeSpan.FromHours(18), null, golden);
        // Wednesday 30 September 16:00 + 4 h: 2 h that day, then 1-7 October are holidays, then Thursday 8 October 11:00.
        Assert.Equal(At("2026-10-08T11:00:00+08:00"), shanghai.Add(At("2026-09-30T16:00:00+08:00"), TimeSpan.FromHours(4)));
        Assert.Equal(TimeSpan.FromHours(4), shanghai.Between(At("2026-09-30T16:00:00+08:00"), At("2026-10-08T11:00:00+08:00")));
        Assert.True(shanghai.IsHoliday(new DateOnly(2026, 10, 5)));
    }

    [Fact]
    public void A_holiday_in_the_middle_of_the_week_is_skipped_and_long_targets_span_weeks()
    {
        var berlin = NineToFive("Europe/Berlin", new DateOnly(2026, 12, 24), new DateOnly(2026, 12, 25));
        // Wednesday 23 Dec 16:00 + 2 h: 1 h Wednesday, Thursday and Friday are holidays, Monday 28th 10:00.
        Assert.Equal(At("2026-12-28T10:00:00+01:00"), berlin.Add(At("2026-12-23T16:00:00+01:00"), TimeSpan.FromHours(2)));
        // 40 business hours is one working week.
        Assert.Equal(At("2026-03-16T17:00:00+01:00"), berlin.Add(At("2026-03-09T17:00:00+01:00"), TimeSpan.FromHours(40)));
    }

    [Fact]
    public void Split_and_overlapping_hours_merge()
    {
        var lunch = BusinessCalendar.From(new BusinessCalendarDefinition
        {
            Id = "lunch", Name = "Lunch break", TimeZone = "UTC",
            Hours = [new(DayOfWeek.Monday, TimeSpan.FromHours(9), TimeSpan.FromHours(12)), new(DayOfWeek.Monday, TimeSpan.FromHours(13), TimeSpan.FromHours(17)),
                new(DayOfWeek.Monday, TimeSpan.FromHours(14), TimeSpan.FromHours(15))],
        });
        Assert.Equal(At("2026-03-23T14:00:00Z"), lunch.Add(At("2026-03-23T11:00:00Z"), TimeSpan.FromHours(2)));
        Assert.Equal(TimeSpan.FromHours(7), lunch.Between(At("2026-03-23T00:00:00Z"), At("2026-03-24T00:00:00Z")));
    }

    [Fact]
    public void Bad_definitions_are_refused_with_a_reason()
    {
        var zone = Assert.Throws<DomainException>(() => NineToFive("Mars/Olympus_Mons"));
        Assert.Contains("time zone", zone.Message);
        var backwards = Assert.Throws<DomainException>(() => Calendar("UTC", TimeSpan.FromHours(17), TimeSpan.FromHours(9)));
        Assert.Contains("open before they close", backwards.Message);
        Assert.Throws<DomainException>(() => Calendar("UTC", TimeSpan.FromHours(9), TimeSpan.FromHours(17), []));
    }

    [Fact]
    public void A_paused_clock_stops_counting_and_resumes_where_it_left_off()
    {
        var berlin = NineToFive("Europe/Berlin");
        var clock = SlaClockValue.Start(SlaMetric.Resolution, TimeSpan.FromHours(8), At("2026-03-23T09:00:00+01:00"));
        Assert.Equal(At("2026-03-23T17:00:00+01:00"), clock.DueAt(berlin));
        // Pending from 11:00 Monday to 15:00 Tuesday: 2 h consumed, 6 h left from Tuesday 15:00.
        var paused = clock.Pause(berlin, At("2026-03-23T11:00:00+01:00"));
        Assert.Null(paused.DueAt(berlin));
        Assert.Equal(TimeSpan.FromHours(2), paused.Elapsed(berlin, At("2026-03-24T15:00:00+01:00")));
        var resumed = paused.Resume(At("2026-03-24T15:00:00+01:00"));
        Assert.Equal(At("2026-03-25T13:00:00+01:00"), resumed.DueAt(berlin));
        Assert.False(resumed.IsBreached(berlin, At("2026-03-25T12:59:00+01:00")));
        Assert.True(resumed.IsBreached(berlin, At("2026-03-25T13:00:00+01:00")));
        var stopped = resumed.Stop(berlin, At("2026-03-25T10:00:00+01:00"));
        Assert.Equal(TimeSpan.FromHours(5), stopped.Elapsed(berlin, At("2026-04-30T00:00:00+02:00")));
        Assert.Equal(stopped, stopped.Resume(At("2026-03-26T10:00:00+01:00")));
    }

    [Fact]
    public void The_warning_is_at_80_percent_of_the_business_time_and_escalations_count_past_the_breach()
    {
        var berlin = NineToFive("Europe/Berlin");
        var clock = SlaClockValue.Start(SlaMetric.FirstResponse, TimeSpan.FromHours(10), At("2026-03-27T16:00:00+01:00"));
        // 8 h: 1 h Friday, 7 h Monday.
        Assert.Equal(At("2026-03-30T16:00:00+02:00"), clock.MomentOf(berlin, 0.8));
        // 10 h: 1 h Friday, 8 h Monday, 1 h Tuesday.
        Assert.Equal(At("2026-03-31T10:00:00+02:00"), clock.DueAt(berlin));
        Assert.Equal(At("2026-03-31T12:00:00+02:00"), clock.BreachedFor(berlin, TimeSpan.FromHours(2)));
        // A clock already past its warning when it resumes is due at once.
        var late = clock.Pause(berlin, At("2026-03-30T16:30:00+02:00")).Resume(At("2026-04-01T09:00:00+02:00"));
        Assert.Equal(At("2026-04-01T09:00:00+02:00"), late.MomentOf(berlin, 0.8));
    }

    [Fact]
    public void Holidays_import_from_an_iCalendar_file_including_yearly_and_multi_day_events()
    {
        const string ics = """
            BEGIN:VCALENDAR
            VERSION:2.0
            PRODID:-//test//holidays//EN
            BEGIN:VEVENT
            UID:new-year@test
            DTSTART;VALUE=DATE:20250101
            DTEND;VALUE=DATE:20250102
            RRULE:FREQ=YEARLY
            SUMMARY:New Year
            END:VEVENT
            BEGIN:VEVENT
            UID:golden-week-2026@test
            DTSTART;VALUE=DATE:20261001
            DTEND;VALUE=DATE:20261008
            SUMMARY:National Day
            END:VEVENT
            BEGIN:VEVENT
            UID:meeting@test
            DTSTART:20260305T100000Z
            DTEND:20260305T110000Z
            SUMMARY:Not a holiday
            END:VEVENT
            END:VCALENDAR
            """;
        var days = HolidayImport.Parse(ics, 2026, 2027);
        Assert.Equal([new DateOnly(2026, 1, 1), .. Enumerable.Range(1, 7).Select(d => new DateOnly(2026, 10, d)), new DateOnly(2027, 1, 1)], days);
        Assert.Throws<DomainException>(() => HolidayImport.Parse("this is not a calendar", 2026, 2026));
    }
}
