using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Console;

/// <summary>The console's queues in each order read their indexes in order (one query per status and team, merged),
/// and page through every ticket once.</summary>
public sealed class ConsoleQueueSortTests(ITestOutputHelper output) : AppTest
{
    public static TheoryData<ConsoleQueue, TicketSort> QueuesAndOrders()
    {
        var data = new TheoryData<ConsoleQueue, TicketSort>();
        foreach (var queue in Enum.GetValues<ConsoleQueue>())
            foreach (var sort in Enum.GetValues<TicketSort>())
                data.Add(queue, sort);
        return data;
    }

    [Theory]
    [MemberData(nameof(QueuesAndOrders))]
    public async Task Every_queue_reads_an_index_in_its_order_without_sorting(ConsoleQueue queue, TicketSort sort)
    {
        var filter = ConsoleQueues.Filter(queue, "ann@example.com", ["billing", "sales"]);
        var after = new QueueCursor(sort, DateTimeOffset.UtcNow, TicketPriority.High, 10001);

        var plans = await App.QueryAsync(async db =>
        {
            var parts = new List<string>();
            foreach (var part in TicketQueries.Parts(db, filter, sort, after))
                parts.Add(await QueryPlans.ExplainAsync(db, part.Take(51)));
            return parts;
        });

        Assert.NotEmpty(plans);
        foreach (var plan in plans)
        {
            output.WriteLine(plan);
            Assert.Matches(@"SEARCH t USING (COVERING )?INDEX IX_Tickets_", plan);
            Assert.DoesNotContain("USE TEMP B-TREE", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("SCAN", plan, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(TicketSort.Updated)]
    [InlineData(TicketSort.Created)]
    [InlineData(TicketSort.Priority)]
    public async Task Each_order_pages_through_a_queue_of_several_statuses_once_in_order(TicketSort sort)
    {
        var numbers = new List<long>();
        for (var i = 0; i < 9; i++)
        {
            var response = await App.PostMessageAsync(new { messageId = $"s{sort}{i}", sender = new { id = $"c{i}", name = "C" }, text = "hello" });
            numbers.Add((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64());
        }
        var statuses = new[] { TicketStatus.New, TicketStatus.Open, TicketStatus.Pending, TicketStatus.OnHold, TicketStatus.Resolved };
        var priorities = new[] { TicketPriority.Low, TicketPriority.High, TicketPriority.Normal, TicketPriority.Urgent };
        // Touch them out of creation order, so Updated and Created differ.
        for (var i = numbers.Count - 1; i >= 0; i--)
        {
            await App.Grains.GetGrain<ITicketGrain>(numbers[i]).ChangeAsync(new TicketChange
            {
                Status = statuses[i % statuses.Length] == TicketStatus.New ? null : statuses[i % statuses.Length],
                Priority = priorities[i % priorities.Length],
                Assignee = "ann@example.com",
            }, "test");
        }
        var queries = App.Services.GetRequiredService<TicketQueries>();
        var filter = ConsoleQueues.Filter(ConsoleQueue.Mine, "ann@example.com");
        var expected = (await queries.ListAsync(filter with { Statuses = null }, sort, null, 100, CancellationToken.None)).Items
            .Where(t => filter.Statuses!.Contains(t.Status)).Select(t => t.Number).ToList();

        var seen = new List<long>();
        QueueCursor? after = null;
        for (var pages = 0; pages < 20; pages++)
        {
            var page = await queries.ListAsync(filter, sort, after, 2, CancellationToken.None);
            seen.AddRange(page.Items.Select(t => t.Number));
            if (page.NextCursor is null)
                break;
            Assert.True(QueueCursor.TryDecode(page.NextCursor, sort, out var next));
            after = next;
        }

        Assert.Equal(8, expected.Count);
        Assert.Equal(expected, seen);
    }
}
