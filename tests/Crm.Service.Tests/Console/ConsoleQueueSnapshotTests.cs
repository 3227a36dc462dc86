using System.Data.Common;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Crm.Service.Tests.Console;

/// <summary>A queue of several statuses is read in parts; a ticket that moves between parts while the page is read
/// shows exactly once (review routing2-console3 N7).</summary>
public sealed class ConsoleQueueSnapshotTests : AppTest
{
    private async Task<long> ReceiveAsync(string id)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = "s-" + id, name = "Rita" }, text = "hello " + id });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    /// <summary>Runs <see cref="Between"/> once, right after the first queue part's query has started reading.</summary>
    private sealed class BetweenParts : DbCommandInterceptor
    {
        public Func<Task>? Between { get; set; }

        public override async ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("FROM \"Tickets\"", StringComparison.Ordinal) && Interlocked.Exchange(ref _between, null) is { } between)
                await between();
            return result;
        }

        private Func<Task>? _between;

        public void Arm(Func<Task> between) => _between = between;
    }

    private TicketQueries QueriesWith(BetweenParts interceptor)
    {
        var options = new DbContextOptionsBuilder<CrmDbContext>()
            .UseSqlite(App.Services.GetRequiredService<IOptions<StoreOptions>>().Value.ConnectionString)
            .AddInterceptors(interceptor).Options;
        return new TicketQueries(new PooledDbContextFactory<CrmDbContext>(options));
    }

    [Theory]
    [InlineData(TicketStatus.Pending, TicketStatus.OnHold)]
    [InlineData(TicketStatus.OnHold, TicketStatus.Pending)]
    public async Task A_ticket_moving_between_the_parts_of_a_queue_shows_once(TicketStatus from, TicketStatus to)
    {
        var moving = await ReceiveAsync("m");
        var other = await ReceiveAsync("o");
        var grains = App.Grains;
        await grains.GetGrain<ITicketGrain>(moving).ChangeAsync(new TicketChange { Status = from }, "test");
        await grains.GetGrain<ITicketGrain>(other).ChangeAsync(new TicketChange { Status = TicketStatus.Pending }, "test");
        var interceptor = new BetweenParts();
        var queries = QueriesWith(interceptor);
        var filter = new TicketFilter { Statuses = [TicketStatus.Pending, TicketStatus.OnHold] };
        Assert.Equal(2, TicketQueries.Parts(await App.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync(), filter, TicketSort.Updated, null).Count);

        // The first part (Pending) has been read when the ticket moves to the other part.
        interceptor.Arm(() => grains.GetGrain<ITicketGrain>(moving).ChangeAsync(new TicketChange { Status = to }, "test"));
        var page = await queries.ListAsync(filter, TicketSort.Updated, null, 50, CancellationToken.None);

        Assert.Equal(to, (await grains.GetGrain<ITicketGrain>(moving).GetAsync())!.Status);
        Assert.Equal(1, page.Items.Count(t => t.Number == moving));
        Assert.Equal(1, page.Items.Count(t => t.Number == other));
    }
}
