using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Console;

/// <summary>Review C5: the tag and channel queue filters read their projections' indexes, never every ticket.</summary>
public sealed class ConsoleQueueFilterTests(ITestOutputHelper output) : AppTest
{
    private async Task<long> ReceiveAsync(string id, string sender, string channel = "bridge")
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = sender }, text = "help " + id }, channel);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private async Task TagAsync(long number, params string[] tags) =>
        await App.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Tags = tags }, "test");

    private async Task<List<long>> ListAsync(TicketFilter filter, TicketSort sort = TicketSort.Updated, int pageSize = 2)
    {
        var queries = App.Services.GetRequiredService<TicketQueries>();
        var seen = new List<long>();
        QueueCursor? after = null;
        for (var pages = 0; pages < 50; pages++)
        {
            var page = await queries.ListAsync(filter, sort, after, pageSize, CancellationToken.None);
            seen.AddRange(page.Items.Select(t => t.Number));
            if (page.NextCursor is null)
                break;
            Assert.True(QueueCursor.TryDecode(page.NextCursor, sort, out var next));
            after = next;
        }
        return seen;
    }

    [Fact]
    public async Task Tag_and_channel_filters_follow_tag_changes_new_messages_merges_and_splits()
    {
        using (var admin = App.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new { kind = "api", name = "Shop bridge", secret = CrmApp.ChannelSecret })).EnsureSuccessStatusCode();
        var a = await ReceiveAsync("a", "ann");
        var b = await ReceiveAsync("b", "bob");
        var c = await ReceiveAsync("c", "cid", channel: "shop");
        var d = await ReceiveAsync("d", "dan");
        await TagAsync(a, "vip", "billing");
        await TagAsync(b, "vip");
        await TagAsync(c, "vip");

        // Newest activity first across pages of 2, in every sort.
        Assert.Equal([c, b, a], await ListAsync(new TicketFilter { Tag = "vip" }));
        Assert.Equal([c, b, a], await ListAsync(new TicketFilter { Tag = "vip" }, TicketSort.Created));
        Assert.Equal([c], await ListAsync(new TicketFilter { Channel = "shop" }));
        // Tagging is activity too: b and a moved above d.
        Assert.Equal([b, a, d], await ListAsync(new TicketFilter { Channel = "bridge" }));
        Assert.Equal([b, a], await ListAsync(new TicketFilter { Tag = "vip", Channel = "bridge" }));
        Assert.Equal([a], await ListAsync(new TicketFilter { Tag = "billing" }));

        // Activity moves a ticket to the top of its tag's queue; removing a tag takes it out.
        await App.PostMessageAsync(new { messageId = "a2", sender = new { id = "ann" }, text = "again" });
        await TagAsync(b);
        Assert.Equal([a, c], await ListAsync(new TicketFilter { Tag = "vip" }));
        Assert.Equal([b, a, d], await ListAsync(new TicketFilter { Channel = "bridge", Status = TicketStatus.New }));

        // Merging moves the shop message into a: a now has a shop message; c (merged, closed) keeps none.
        // (Tickets merge within one customer: the shop customer is merged into ann first.)
        var customerOf = async (long n) => await App.QueryAsync(db => db.Tickets.Where(t => t.Number == n).Select(t => t.CustomerId).SingleAsync());
        await App.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(await customerOf(c), await customerOf(a), "test");
        await App.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets).MergeTicketsAsync(c, a, "test");
        Assert.Equal([a], await ListAsync(new TicketFilter { Channel = "shop" }));

        // Splitting the shop message out again moves the channel with it.
        var shopMessage = await App.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == a && m.ChannelAccountId == "shop").Select(m => m.Id).SingleAsync());
        var split = await App.Grains.GetGrain<ITicketGrain>(a).SplitAsync(shopMessage, "test");
        Assert.Equal([split.Number], await ListAsync(new TicketFilter { Channel = "shop" }));

        // The projections agree with the tickets they come from.
        var tags = await App.QueryAsync(db => db.TicketTags.OrderBy(x => x.TicketNumber).Select(x => new { x.TicketNumber, x.Tag, x.UpdatedAt }).ToListAsync());
        var tickets = await App.QueryAsync(db => db.Tickets.ToListAsync());
        Assert.Equal(tickets.SelectMany(t => t.Tags.Select(tag => new { TicketNumber = t.Number, Tag = tag, t.UpdatedAt })).OrderBy(x => x.TicketNumber).ThenBy(x => x.Tag),
            tags.OrderBy(x => x.TicketNumber).ThenBy(x => x.Tag));
    }

    [Fact]
    public async Task A_store_from_before_the_projections_is_filled_once_at_start()
    {
        var a = await ReceiveAsync("a", "ann");
        await TagAsync(a, "vip");
        await App.QueryAsync(async db =>
        {
            await db.Database.ExecuteSqlRawAsync("DELETE FROM TicketTags; DELETE FROM TicketChannels; DELETE FROM Sequences WHERE Name LIKE 'projection:%';");
            await TicketProjections.BackfillAsync(db);
            return 0;
        });
        Assert.Equal([a], await ListAsync(new TicketFilter { Tag = "vip" }));
        await App.QueryAsync(async db =>
        {
            // A second run changes nothing (the marker says it was done): a restart does not rescan a million tickets.
            await db.Database.ExecuteSqlRawAsync("DELETE FROM TicketTags;");
            await TicketProjections.BackfillAsync(db);
            return 0;
        });
        Assert.Empty(await ListAsync(new TicketFilter { Tag = "vip" }));
        Assert.Equal([a], await ListAsync(new TicketFilter { Channel = "bridge" }));
    }

    public static TheoryData<string> Filters() => [.. Plans.Keys];

    // Each filter reads the projection's index; the Updated order reads it in order (no sort of the tag's tickets).
    private static readonly Dictionary<string, (TicketFilter Filter, TicketSort Sort, string Index, bool Sorts)> Plans = new()
    {
        ["tag"] = (new TicketFilter { Tag = "zzz" }, TicketSort.Updated, "IX_TicketTags_Tag_UpdatedAt_TicketNumber", false),
        ["channel"] = (new TicketFilter { Channel = "none" }, TicketSort.Updated, "IX_TicketChannels_ChannelAccountId_UpdatedAt_TicketNumber", false),
        ["closed+tag"] = (new TicketFilter { Statuses = [TicketStatus.Resolved, TicketStatus.Closed], Tag = "zzz" }, TicketSort.Updated, "IX_TicketTags_Tag_UpdatedAt_TicketNumber", false),
        ["status+priority+tag"] = (new TicketFilter { Status = TicketStatus.Open, Priority = TicketPriority.High, Tag = "vip" }, TicketSort.Updated, "IX_TicketTags_Tag_UpdatedAt_TicketNumber", false),
        ["tag+channel"] = (new TicketFilter { Tag = "zzz", Channel = "none" }, TicketSort.Updated, "IX_TicketTags_Tag_UpdatedAt_TicketNumber", false),
        ["tag by created"] = (new TicketFilter { Tag = "zzz" }, TicketSort.Created, "IX_TicketTags_Tag_UpdatedAt_TicketNumber", true),
        ["channel by priority"] = (new TicketFilter { Channel = "none" }, TicketSort.Priority, "IX_TicketChannels_ChannelAccountId_UpdatedAt_TicketNumber", true),
    };

    [Theory]
    [MemberData(nameof(Filters))]
    public async Task Tag_and_channel_filters_never_scan_the_tickets(string name)
    {
        var (filter, sort, index, sorts) = Plans[name];
        var after = new QueueCursor(sort, DateTimeOffset.UtcNow, TicketPriority.High, 10001);

        var plan = await App.QueryAsync(db => QueryPlans.ExplainAsync(db, TicketQueries.Queue(db, filter, sort, after).Take(51)));

        output.WriteLine(plan);
        Assert.Contains($"USING COVERING INDEX {index} ", plan + " ", StringComparison.Ordinal);
        // Tickets are read by number only: no scan, no walk of an UpdatedAt/CreatedAt index, no probe of Messages.
        Assert.Matches(@"SEARCH t\d* USING INTEGER PRIMARY KEY \(rowid=\?\)", plan);
        Assert.DoesNotContain("SCAN", plan.Replace("SCAN CONSTANT ROW", ""), StringComparison.Ordinal);
        Assert.DoesNotContain("IX_Tickets_", plan, StringComparison.Ordinal);
        Assert.DoesNotContain("Messages", plan, StringComparison.Ordinal);
        Assert.Equal(sorts, plan.Contains("USE TEMP B-TREE FOR ORDER BY", StringComparison.Ordinal));
    }
}
