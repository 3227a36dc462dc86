using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Api;

public sealed class CursorTests
{
    [Fact]
    public void A_queue_cursor_round_trips_through_its_text()
    {
        var cursor = new TicketCursor(new DateTimeOffset(2026, 11, 22, 10, 0, 0, 123, TimeSpan.FromHours(2)), 10042);

        Assert.True(TicketCursor.TryDecode(cursor.Encode(), out var decoded));

        Assert.Equal(cursor, decoded);
        Assert.Equal(TimeSpan.Zero, decoded.UpdatedAt.Offset);
        Assert.Matches("^[A-Za-z0-9_-]+$", cursor.Encode());
    }

    [Fact]
    public void An_entry_cursor_round_trips_and_belongs_to_one_list()
    {
        var cursor = new EntryCursor(DateTimeOffset.UnixEpoch.AddTicks(1), Guid.NewGuid());

        Assert.True(EntryCursor.TryDecode(cursor.Encode(CursorKind.Timeline), CursorKind.Timeline, out var decoded));
        Assert.Equal(cursor, decoded);
        Assert.False(EntryCursor.TryDecode(cursor.Encode(CursorKind.Timeline), CursorKind.History, out _));
        Assert.False(TicketCursor.TryDecode(cursor.Encode(CursorKind.Queue), out _));
    }

    public static TheoryData<string?> MalformedQueueCursors()
    {
        var valid = new TicketCursor(DateTimeOffset.UnixEpoch, 10001).Encode();
        return
        [
            null,
            "",
            "abc",
            valid + "A",
            valid[..^1],
            valid[..^1] + "!",
            valid.Replace('A', '+'),
            // Another spelling of the same bytes (unused low bits of the last character set).
            valid[..^1] + (char)(valid[^1] + 1),
            new EntryCursor(DateTimeOffset.UnixEpoch, Guid.NewGuid()).Encode(CursorKind.Timeline),
            Raw(kind: 1, ticks: -1, number: 10001),
            Raw(kind: 1, ticks: DateTimeOffset.MaxValue.UtcTicks + 1, number: 10001),
            Raw(kind: 1, ticks: 0, number: 0),
            Raw(kind: 9, ticks: 0, number: 10001),
            new string('A', 10_000),
        ];
    }

    [Theory]
    [MemberData(nameof(MalformedQueueCursors))]
    public void A_malformed_queue_cursor_is_refused_without_throwing(string? text) =>
        Assert.False(TicketCursor.TryDecode(text, out _));

    [Fact]
    public void The_extremes_of_time_are_valid_positions()
    {
        foreach (var at in new[] { DateTimeOffset.MinValue, DateTimeOffset.MaxValue })
        {
            Assert.True(TicketCursor.TryDecode(new TicketCursor(at, long.MaxValue).Encode(), out var decoded));
            Assert.Equal(at.UtcTicks, decoded.UpdatedAt.UtcTicks);
        }
    }

    private static string Raw(byte kind, long ticks, long number)
    {
        var bytes = new byte[17];
        bytes[0] = kind;
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(1), ticks);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(9), number);
        return System.Buffers.Text.Base64Url.EncodeToString(bytes);
    }
}

public sealed class QueryTests(ITestOutputHelper output) : AppTest
{
    private async Task<JsonElement> ReceiveAsync(string id, string sender, string text = "hello", string? thread = null, object[]? attachments = null)
    {
        var response = await App.PostMessageAsync(new { messageId = id, threadKey = thread, sender = new { id = sender }, text, attachments });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private async Task<List<long>> OpenTicketsAsync(int count, string prefix = "p")
    {
        var numbers = new List<long>();
        for (var i = 0; i < count; i++)
            numbers.Add((await ReceiveAsync($"{prefix}-{i}", $"{prefix}-customer-{i}")).GetProperty("ticketNumber").GetInt64());
        return numbers;
    }

    private static (DateTimeOffset UpdatedAt, long Number) Key(JsonElement item) =>
        (item.GetProperty("updatedAt").GetDateTimeOffset(), item.GetProperty("number").GetInt64());

    private static void AssertNewestFirst(IReadOnlyList<(DateTimeOffset At, long Number)> keys)
    {
        for (var i = 1; i < keys.Count; i++)
            Assert.True(keys[i - 1].At > keys[i].At || (keys[i - 1].At == keys[i].At && keys[i - 1].Number > keys[i].Number),
                $"item {i} ({keys[i]}) is not after item {i - 1} ({keys[i - 1]})");
    }

    private static string? NextCursor(JsonElement page) =>
        page.GetProperty("nextCursor") is { ValueKind: JsonValueKind.String } next ? next.GetString() : null;

    [Fact]
    public async Task Paging_a_queue_returns_every_ticket_once_in_order_even_when_a_seen_ticket_changes_between_pages()
    {
        var numbers = await OpenTicketsAsync(25);
        using var agent = await App.AgentAsync();

        var seen = new List<(DateTimeOffset, long)>();
        var pages = 0;
        string? cursor = null;
        do
        {
            var page = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets?pageSize=10{(cursor is null ? "" : $"&cursor={cursor}")}");
            var items = page.GetProperty("items").EnumerateArray().ToList();
            seen.AddRange(items.Select(Key));
            cursor = NextCursor(page);
            Assert.Equal(cursor is not null, page.GetProperty("hasMore").GetBoolean());
            if (++pages == 1)
                // Activity on a ticket already shown moves it to the head of the queue, behind the walk: not shown twice.
                (await agent.PatchAsJsonAsync($"/api/v1/tickets/{items[3].GetProperty("number").GetInt64()}", new { priority = "high" })).EnsureSuccessStatusCode();
        }
        while (cursor is not null);

        Assert.Equal(3, pages);
        Assert.Equal(numbers.Order(), seen.Select(k => k.Item2).Order());
        AssertNewestFirst(seen);
    }

    [Fact]
    public async Task A_ticket_not_yet_reached_that_changes_during_a_walk_moves_to_the_head_for_the_next_walk()
    {
        // The documented semantics of keyset paging on activity: the walk never repeats a ticket and never skips one
        // that stays put; a ticket that changes before the walk reaches it now sorts before the walk's position.
        await OpenTicketsAsync(12);
        using var agent = await App.AgentAsync();
        var first = await agent.GetFromJsonAsync<JsonElement>("/api/v1/tickets?pageSize=5");
        var before = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets?pageSize=50");
        var unseen = before.GetProperty("items")[11].GetProperty("number").GetInt64();

        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{unseen}", new { team = "billing" })).EnsureSuccessStatusCode();
        var rest = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets?pageSize=50&cursor={NextCursor(first)}");
        var refreshed = await agent.GetFromJsonAsync<JsonElement>("/api/v1/tickets?pageSize=5");

        Assert.Equal(6, rest.GetProperty("items").GetArrayLength());
        Assert.DoesNotContain(rest.GetProperty("items").EnumerateArray(), t => t.GetProperty("number").GetInt64() == unseen);
        Assert.Equal(unseen, refreshed.GetProperty("items")[0].GetProperty("number").GetInt64());
    }

    [Fact]
    public async Task A_malformed_or_foreign_cursor_is_a_422_naming_cursor()
    {
        var ticket = (await ReceiveAsync("m-1", "c")).GetProperty("ticketNumber").GetInt64();
        using var agent = await App.AgentAsync();
        var timelineCursor = new EntryCursor(DateTimeOffset.UtcNow, Guid.NewGuid()).Encode(CursorKind.Timeline);

        foreach (var url in new[]
        {
            "/api/v1/tickets?cursor=not-a-cursor",
            "/api/v1/tickets?cursor=",
            $"/api/v1/tickets?cursor={timelineCursor}",
            $"/api/v1/tickets/{ticket}/timeline?cursor=%2F%2F%2F",
            $"/api/v1/tickets/{ticket}/history?cursor={timelineCursor}",
            $"/api/v1/customers/{Guid.NewGuid()}/tickets?cursor=x",
        })
        {
            var response = await agent.GetAsync(url);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
            Assert.Equal("cursor", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        }
    }

    [Fact]
    public async Task Offset_paging_and_oversized_pages_are_refused_by_name()
    {
        using var agent = await App.AgentAsync();

        var page = await agent.GetAsync("/api/v1/tickets?page=2");
        var tooBig = await agent.GetAsync("/api/v1/tickets?pageSize=201");
        var tooBigTimeline = await agent.GetAsync("/api/v1/tickets/10001/timeline?pageSize=0");

        Assert.Equal((HttpStatusCode.UnprocessableEntity, "page"), (page.StatusCode, await FieldAsync(page)));
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "pageSize"), (tooBig.StatusCode, await FieldAsync(tooBig)));
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "pageSize"), (tooBigTimeline.StatusCode, await FieldAsync(tooBigTimeline)));
    }

    private static async Task<string?> FieldAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>()).TryGetProperty("field", out var field) ? field.GetString() : null;

    [Fact]
    public async Task A_long_timeline_pages_newest_first_without_duplicates_or_gaps()
    {
        var photo = new { fileName = "photo.png", contentType = "image/png", contentBase64 = Convert.ToBase64String(Png) };
        long ticket = 0;
        for (var i = 0; i < 30; i++)
            ticket = (await ReceiveAsync($"t-{i}", "talkative", $"message {i}", thread: "long", attachments: i is 2 or 27 ? [photo] : null))
                .GetProperty("ticketNumber").GetInt64();
        using var agent = await App.AgentAsync();

        var details = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        var texts = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}/timeline?pageSize=7{(cursor is null ? "" : $"&cursor={cursor}")}");
            foreach (var message in page.GetProperty("items").EnumerateArray())
            {
                texts.Add(message.GetProperty("text").GetString()!);
                var expected = message.GetProperty("text").GetString() is "message 2" or "message 27" ? 1 : 0;
                Assert.Equal(expected, message.GetProperty("attachments").GetArrayLength());
            }
            cursor = NextCursor(page);
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(5, pages);
        Assert.Equal(Enumerable.Range(0, 30).Reverse().Select(i => $"message {i}"), texts);
        // The ticket's own page is the newest 50: all 30 here, in the same order, with nothing older to load.
        Assert.Equal(texts, details.GetProperty("timeline").EnumerateArray().Select(m => m.GetProperty("text").GetString()));
        Assert.Equal(JsonValueKind.Null, details.GetProperty("timelineNextCursor").ValueKind);
    }

    [Fact]
    public async Task Entries_with_the_same_time_page_by_id_without_duplicates_or_gaps()
    {
        var ticket = (await ReceiveAsync("same-time", "c")).GetProperty("ticketNumber").GetInt64();
        // Audit entries written in one change share their time exactly; the id breaks the tie.
        using var agent = await App.AgentAsync();
        (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}",
            new { status = "pending", priority = "high", assignee = "ann", team = "billing", subject = "Renamed", tags = new[] { "vip" } })).EnsureSuccessStatusCode();
        var stored = await App.QueryAsync(db => db.Audit.Where(a => a.EntityType == "ticket" && a.EntityId == ticket.ToString(System.Globalization.CultureInfo.InvariantCulture)).CountAsync());

        var entries = await PageAllAsync(agent, $"/api/v1/tickets/{ticket}/history", 2);

        Assert.True(stored >= 6, $"one audit entry per changed field, {stored} stored");
        Assert.Equal(stored, entries.Count);
        Assert.Equal(stored, entries.Distinct().Count());
    }

    private static async Task<List<string>> PageAllAsync(HttpClient agent, string url, int pageSize)
    {
        var entries = new List<string>();
        string? cursor = null;
        do
        {
            var page = await agent.GetFromJsonAsync<JsonElement>($"{url}?pageSize={pageSize}{(cursor is null ? "" : $"&cursor={cursor}")}");
            entries.AddRange(page.GetProperty("items").EnumerateArray().Select(e => e.GetRawText()));
            cursor = NextCursor(page);
        }
        while (cursor is not null);
        return entries;
    }

    [Fact]
    public async Task History_pages_newest_first_and_the_ticket_shows_its_newest_page()
    {
        var ticket = (await ReceiveAsync("h-1", "c")).GetProperty("ticketNumber").GetInt64();
        using var agent = await App.AgentAsync("ann");
        for (var i = 0; i < 12; i++)
            (await agent.PatchAsJsonAsync($"/api/v1/tickets/{ticket}", new { subject = $"subject {i}" })).EnsureSuccessStatusCode();

        var details = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        var entries = (await PageAllAsync(agent, $"/api/v1/tickets/{ticket}/history", 5)).Select(e => JsonDocument.Parse(e).RootElement).ToList();

        var subjects = entries.Where(e => e.GetProperty("field").GetString() == "subject").Select(e => e.GetProperty("newValue").GetString()).ToList();
        Assert.Equal(Enumerable.Range(0, 12).Reverse().Select(i => $"subject {i}"), subjects);
        var times = entries.Select(e => e.GetProperty("at").GetDateTimeOffset()).ToList();
        Assert.Equal(times.OrderDescending(), times);
        Assert.Equal(entries.Select(e => e.GetRawText()), details.GetProperty("history").EnumerateArray().Select(e => e.GetRawText()));
        Assert.Equal("subject 11", details.GetProperty("ticket").GetProperty("subject").GetString());
    }

    [Fact]
    public async Task Queue_filters_combine()
    {
        await App.CreateApiChannelAsync("other");
        var numbers = await OpenTicketsAsync(6, "f");
        var elsewhere = (await (await App.PostMessageAsync(new { messageId = "o-1", sender = new { id = "far" }, text = "hi" }, channel: "other"))
            .Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
        using var agent = await App.AgentAsync();
        async Task ChangeAsync(long number, object change) => (await agent.PatchAsJsonAsync($"/api/v1/tickets/{number}", change)).EnsureSuccessStatusCode();
        await ChangeAsync(numbers[0], new { assignee = "ann", status = "pending", priority = "high", tags = new[] { "vip" } });
        await ChangeAsync(numbers[1], new { assignee = "ann", status = "open", priority = "high", tags = new[] { "vip" } });
        await ChangeAsync(numbers[2], new { assignee = "ann", status = "pending", priority = "low" });
        await ChangeAsync(numbers[3], new { team = "billing", status = "pending", tags = new[] { "vip", "refund" } });
        await ChangeAsync(numbers[4], new { team = "billing", assignee = "bob", priority = "urgent" });

        async Task<long[]> ListAsync(string query) =>
            (await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets?{query}")).GetProperty("items").EnumerateArray()
                .Select(t => t.GetProperty("number").GetInt64()).Order().ToArray();

        Assert.Equal([numbers[0], numbers[2]], await ListAsync("assignee=ann&status=pending"));
        Assert.Equal([numbers[0]], await ListAsync("assignee=ann&status=pending&priority=high&tag=vip"));
        Assert.Equal([numbers[0], numbers[1]], await ListAsync("assignee=ann&tag=vip"));
        Assert.Equal([numbers[3]], await ListAsync("team=billing&status=pending"));
        Assert.Equal([numbers[4]], await ListAsync("team=billing&assignee=bob"));
        Assert.Equal([numbers[3], numbers[5], elsewhere], await ListAsync("assignee="));
        Assert.Equal([numbers[5], elsewhere], await ListAsync("assignee=&team="));
        Assert.Equal([elsewhere], await ListAsync("channel=other"));
        Assert.Equal([numbers[4]], await ListAsync("channel=bridge&priority=urgent"));
        Assert.Empty(await ListAsync("channel=other&status=pending"));
        var customer = (await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{numbers[3]}")).GetProperty("ticket").GetProperty("customerId").GetGuid();
        Assert.Equal([numbers[3]], await ListAsync($"customer={customer}&tag=refund"));
        var badPriority = await agent.GetAsync("/api/v1/tickets?priority=whenever");
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "priority"), (badPriority.StatusCode, await FieldAsync(badPriority)));
    }

    [Fact]
    public async Task A_customer_reads_with_identities_and_pages_their_tickets()
    {
        var first = await ReceiveAsync("c-1", "regular", thread: "a");
        await ReceiveAsync("c-2", "regular", thread: "b");
        await ReceiveAsync("c-3", "regular", thread: "c");
        var customer = first.GetProperty("customerId").GetGuid();
        using var agent = await App.AgentAsync();

        var changed = await (await agent.PatchAsJsonAsync($"/api/v1/customers/{customer}", new { name = "Reggie", customFields = new { plan = "gold" } }))
            .Content.ReadFromJsonAsync<JsonElement>();
        var profile = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/customers/{customer}");
        var tickets = await PageAllAsync(agent, $"/api/v1/customers/{customer}/tickets", 2);
        var missing = await agent.GetAsync($"/api/v1/customers/{Guid.NewGuid()}/tickets");

        Assert.Equal("Reggie", changed.GetProperty("name").GetString());
        Assert.Equal(changed.GetRawText(), profile.GetRawText());
        Assert.Equal("gold", profile.GetProperty("customFields").GetProperty("plan").GetString());
        Assert.Equal("regular", Assert.Single(profile.GetProperty("identities").EnumerateArray()).GetProperty("value").GetString());
        Assert.Equal(3, tickets.Count);
        Assert.All(tickets, t => Assert.Equal("Reggie", JsonDocument.Parse(t).RootElement.GetProperty("customerName").GetString()));
        Assert.Equal((HttpStatusCode.NotFound, "id"), (missing.StatusCode, await FieldAsync(missing)));
    }

    public static TheoryData<string> PlannedQueries() => [.. Plans.Keys];

    // What EXPLAIN QUERY PLAN shows on the current schema: the index each list reads and whether it reads in order.
    // "sorts" marks combinations whose index has no UpdatedAt right after the filtered columns: SQLite reads every
    // matching row and sorts it for each page (only a customer's few tickets do that).
    private static readonly Dictionary<string, (Func<CrmDbContext, IQueryable<object>> Query, string Index, bool Sorts)> Plans = new()
    {
        ["none"] = (db => Queue(db, new TicketFilter()), "IX_Tickets_UpdatedAt", false),
        ["status"] = (db => Queue(db, new TicketFilter { Status = TicketStatus.Open }), "IX_Tickets_Status_UpdatedAt", false),
        ["assignee+status"] = (db => Queue(db, new TicketFilter { Assignee = "ann", Status = TicketStatus.Open }), "IX_Tickets_Assignee_Status_UpdatedAt", false),
        ["unassigned+status"] = (db => Queue(db, new TicketFilter { Assignee = "", Status = TicketStatus.New }), "IX_Tickets_Assignee_Status_UpdatedAt", false),
        ["team+status"] = (db => Queue(db, new TicketFilter { Team = "billing", Status = TicketStatus.Open }), "IX_Tickets_Team_Status_UpdatedAt", false),
        // The console's priority sort added (Status, Priority, UpdatedAt): both filters are then equalities before the sort key.
        ["status+priority"] = (db => Queue(db, new TicketFilter { Status = TicketStatus.Open, Priority = TicketPriority.High }), "IX_Tickets_Status_Priority_UpdatedAt", false),
        ["status by created"] = (db => TicketQueries.Queue(db, new TicketFilter { Status = TicketStatus.Open }, TicketSort.Created, new QueueCursor(TicketSort.Created, DateTimeOffset.UtcNow, default, 10001)).Take(51), "IX_Tickets_Status_CreatedAt", false),
        ["status by priority"] = (db => TicketQueries.Queue(db, new TicketFilter { Status = TicketStatus.Open }, TicketSort.Priority, new QueueCursor(TicketSort.Priority, DateTimeOffset.UtcNow, TicketPriority.High, 10001)).Take(51), "IX_Tickets_Status_Priority_UpdatedAt", false),
        ["priority"] = (db => Queue(db, new TicketFilter { Priority = TicketPriority.High }), "IX_Tickets_UpdatedAt", false),
        // Tag and channel filters read their projections: Console/ConsoleQueueFilterTests.
        ["assignee"] = (db => Queue(db, new TicketFilter { Assignee = "ann" }), "IX_Tickets_Assignee_UpdatedAt", false),
        ["unassigned"] = (db => Queue(db, new TicketFilter { Assignee = "" }), "IX_Tickets_Assignee_UpdatedAt", false),
        ["team"] = (db => Queue(db, new TicketFilter { Team = "billing" }), "IX_Tickets_Team_UpdatedAt", false),
        ["customer"] = (db => Queue(db, new TicketFilter { CustomerId = Guid.NewGuid() }), "IX_Tickets_CustomerId", true),
        ["timeline"] = (db => TicketQueries.Timeline(db, 10001, new EntryCursor(DateTimeOffset.UtcNow, Guid.NewGuid())).Take(51), "IX_Messages_TicketNumber_CreatedAt", false),
        ["history"] = (db => TicketQueries.History(db, 10001, new EntryCursor(DateTimeOffset.UtcNow, Guid.NewGuid())).Take(51), "IX_Audit_EntityType_EntityId_At", false),
    };

    private static IQueryable<object> Queue(CrmDbContext db, TicketFilter filter) =>
        TicketQueries.Queue(db, filter, new TicketCursor(DateTimeOffset.UtcNow, 10001)).Take(51);

    [Theory]
    [MemberData(nameof(PlannedQueries))]
    public async Task Lists_read_through_an_index(string name)
    {
        var (query, index, sorts) = Plans[name];

        var plan = await App.QueryAsync(db => QueryPlans.ExplainAsync(db, query(db)));

        output.WriteLine(plan);
        Assert.Contains($"USING INDEX {index} ", plan + " ", StringComparison.Ordinal);
        Assert.DoesNotContain("SCAN t ", plan + " ", StringComparison.Ordinal);
        // Timeline and history sort only rows with the same time by id ("LAST TERM"), never the whole list.
        Assert.Equal(sorts, plan.Contains("USE TEMP B-TREE FOR ORDER BY", StringComparison.Ordinal));
    }

    // The smallest valid PNG (1×1, transparent), so the attachment sniffer accepts it as an image.
    private static readonly byte[] Png = Convert.FromBase64String(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==");
}
