using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Telegram;

/// <summary>T11: linking a shared phone only when it is free is decided inside the identity grain.</summary>
[Collection(ClusterCollection.Name)]
public sealed class IdentityLinkIfFreeTests(TestClusterFixture cluster)
{
    [Fact]
    public async Task Concurrent_links_of_one_free_number_give_it_to_exactly_one_customer_and_never_move_it()
    {
        var key = GrainKeys.Identity(IdentityKind.Phone, "+4915" + Random.Shared.Next(10_000_000, 99_999_999), "tg");
        var customers = Enumerable.Range(0, 16).Select(_ => Guid.NewGuid()).ToList();
        var identity = cluster.Grains.GetGrain<IIdentityGrain>(key);

        var holders = await Task.WhenAll(customers.Select(c => identity.LinkIfFreeAsync(c, "telegram:tg")));

        var winner = Assert.Single(holders.Distinct());
        Assert.Contains(winner, customers);
        Assert.Equal(winner, await identity.GetCustomerAsync());
        var audit = await cluster.QueryAsync(db => db.Audit.AsNoTracking().Where(a => a.Field == "identity" && (a.NewValue == key || a.OldValue == key)).ToListAsync());
        Assert.Equal("identity-linked", Assert.Single(audit).Action);
        // A later link of another customer changes nothing either.
        Assert.Equal(winner, await identity.LinkIfFreeAsync(Guid.NewGuid(), "telegram:tg"));
    }
}
