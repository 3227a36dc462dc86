using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Tests.Support;
using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Api;

/// <summary>
/// The console's queues filter on several statuses ("open" is New or Open). SQLite sorts every matching row for an IN
/// list (a million-ticket queue would sort its open tickets per page view), so such a queue reads one index range per
/// status and merges them: the pages must be exactly the order a single sorted query gives, in every sort.
/// </summary>
public sealed class QueueMergeTests(ITestOutputHelper output) : AppTest
{
    private readonly SqlCapture _sql = new();

    internal override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command"] = "Information",
    };

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        App.Services.GetRequiredService<ILoggerFactory>().AddProvider(_sql);
    }

    [Theory]
    [InlineData(TicketSort.Updated)]
    [InlineData(TicketSort.Created)]
    [InlineData(TicketSort.Priority)]
    public async Task No_queue_over_several_statuses_sorts_its_tickets_in_a_temporary_btree(TicketSort sort)
    {
        var queries = App.Services.GetRequiredService<TicketQueries>();
        var after = new QueueCursor(sort, DateTimeOffset.UtcNow, TicketPriority.High, 10001);
        foreach (var filter in new[]
        {
            new TicketFilter { Statuses = [TicketStatus.New, TicketStatus.Open] },
            new TicketFilter { Statuses = [TicketStatus.New, TicketStatus.Open, TicketStatus.Pending, TicketStatus.OnHold], Assignee = "ann" },
            new TicketFilter { Statuses = [TicketStatus.Resolved, TicketStatus.Closed] },
        })
        {
            _sql.Commands.Clear();
            await queries.ListAsync(filter, sort, null, 50, CancellationToken.None);
            await queries.ListAsync(filter, sort, after, 50, CancellationToken.None);
            var reads = _sql.Commands.Where(c => c.Contains("FROM \"Tickets\"", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(reads);
            foreach (var read in reads)
            {
                var plan = await App.QueryAsync(db => QueryPlans.ExplainSqlAsync(db, read));
                output.WriteLine($"{sort}: {plan}");
                Assert.DoesNotContain("USE TEMP B-TREE FOR ORDER BY", plan, StringComparison.Ordinal);
                Assert.DoesNotContain("SCAN t", plan, StringComparison.Ordinal);
            }
        }
    }

    /// <summary>EF's executed commands, as logged under Microsoft.EntityFrameworkCore.Database.Command.</summary>
    private sealed class SqlCapture : ILoggerProvider, ILogger
    {
        public ConcurrentQueue<string> Commands { get; } = new();

        public ILogger CreateLogger(string categoryName) => categoryName == "Microsoft.EntityFrameworkCore.Database.Command" ? this : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (state is IReadOnlyList<KeyValuePair<string, object?>> values && values.FirstOrDefault(v => v.Key == "commandText").Value is string text)
                Commands.Enqueue(text);
        }

        public void Dispose()
        {
        }
    }

    [Theory]
    [InlineData(TicketSort.Updated)]
    [InlineData(TicketSort.Created)]
    [InlineData(TicketSort.Priority)]
    public async Task A_queue_over_several_statuses_pages_in_the_same_order_as_one_sorted_query(TicketSort sort)
    {
        var start = DateTimeOffset.UtcNow.AddDays(-1);
        var random = new Random(17);
        TicketStatus[] statuses = [TicketStatus.New, TicketStatus.Open, TicketStatus.Pending, TicketStatus.Closed];
        var tickets = Enumerable.Range(1, 120).Select(i => new TicketRecord
        {
            Number = 50_000 + i,
            Subject = $"merge {i}",
            Status = statuses[random.Next(statuses.Length)],
            Priority = (TicketPriority)random.Next(4),
            Assignee = i % 3 == 0 ? "ann" : null,
            // Ties on purpose: several tickets share a time, so the number decides.
            CreatedAt = start.AddMinutes(random.Next(40)),
            UpdatedAt = start.AddMinutes(random.Next(40)),
        }).ToList();
        var store = App.Services.GetRequiredService<ICrmStore>();
        var set = new WriteSet();
        foreach (var ticket in tickets)
            set.Insert(ticket);
        await store.CommitAsync(set);
        var queries = App.Services.GetRequiredService<TicketQueries>();

        foreach (var filter in new[]
        {
            new TicketFilter { Statuses = [TicketStatus.New, TicketStatus.Open] },
            new TicketFilter { Statuses = [TicketStatus.New, TicketStatus.Open, TicketStatus.Pending, TicketStatus.OnHold], Assignee = "ann" },
            new TicketFilter { Statuses = [TicketStatus.Open, TicketStatus.New, TicketStatus.Open] },
        })
        {
            var matching = tickets.Where(t => filter.Statuses!.Contains(t.Status) && (filter.Assignee is null || t.Assignee == filter.Assignee));
            var expected = (sort switch
            {
                TicketSort.Created => matching.OrderByDescending(t => t.CreatedAt),
                TicketSort.Priority => matching.OrderByDescending(t => t.Priority).ThenByDescending(t => t.UpdatedAt),
                _ => matching.OrderByDescending(t => t.UpdatedAt),
            }).ThenByDescending(t => t.Number).Select(t => t.Number).ToList();

            var read = new List<long>();
            QueueCursor? cursor = null;
            var pages = 0;
            do
            {
                var page = await queries.ListAsync(filter, sort, cursor, 7, CancellationToken.None);
                read.AddRange(page.Items.Select(t => t.Number));
                Assert.True(page.Items.Count == 7 || page.NextCursor is null, "only the last page is short");
                cursor = page.NextCursor is { } next && QueueCursor.TryDecode(next, sort, out var decoded) ? decoded : null;
                Assert.True(++pages < 100, "paging ends");
            }
            while (cursor is not null);

            output.WriteLine($"{sort}, {string.Join("+", filter.Statuses!)}: {read.Count} tickets in {pages} pages");
            Assert.NotEmpty(expected);
            Assert.Equal(expected, read);
        }
    }
}
