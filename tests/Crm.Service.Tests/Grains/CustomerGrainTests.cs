using Crm.Service.Contracts;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class CustomerGrainTests(TestClusterFixture fixture)
{
    [Fact]
    public async Task Merging_customers_moves_identities_and_tickets_and_later_messages_follow()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phoneA = GrainScenario.NewPhone();
        var phoneB = GrainScenario.NewPhone();
        var a = await scenario.ReceiveAsync(scenario.Message("cm-1", phoneA));
        var b = await scenario.ReceiveAsync(scenario.Message("cm-2", phoneB));
        var target = fixture.Grains.GetGrain<ICustomerGrain>(a.CustomerId);
        await fixture.Grains.GetGrain<ICustomerGrain>(b.CustomerId).UpdateProfileAsync(new CustomerProfileChange { Organization = "Acme", Tags = ["vip"] }, "agent");

        var merged = await target.MergeFromAsync(b.CustomerId, "agent");

        Assert.Equal(2, merged.Identities.Count);
        Assert.Equal("Acme", merged.Organization);
        Assert.Equal(["vip"], merged.Tags);
        Assert.Equal(a.CustomerId, (await fixture.Grains.GetGrain<ITicketGrain>(b.TicketNumber).GetAsync())!.CustomerId);
        Assert.Equal(a.CustomerId, (await fixture.Grains.GetGrain<ICustomerGrain>(b.CustomerId).GetAsync())!.MergedInto);
        var identityB = GrainKeys.Identity(IdentityKind.Phone, phoneB, scenario.Channel);
        Assert.Equal(a.CustomerId, await fixture.Grains.GetGrain<IIdentityGrain>(identityB).GetCustomerAsync());
        // Merging again is harmless (an interrupted merge completes when asked again).
        Assert.Equal(2, (await target.MergeFromAsync(b.CustomerId, "agent")).Identities.Count);
    }

    [Fact]
    public async Task Merging_a_customer_with_more_tickets_than_one_window_moves_every_ticket()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var a = await scenario.ReceiveAsync(scenario.Message("cw-a", GrainScenario.NewPhone()));
        var phoneB = GrainScenario.NewPhone();
        // One thread per ticket: 70 open tickets of customer B (the merge moves them 64 at a time).
        var bs = await Task.WhenAll(Enumerable.Range(0, 70).Select(i => scenario.ReceiveAsync(scenario.Message($"cw-b-{i}", phoneB, thread: $"b-{i}"))));
        var customerB = bs[0].CustomerId;

        await fixture.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(customerB, a.CustomerId, "agent");

        var owners = await Task.WhenAll(bs.Select(b => b.TicketNumber).Distinct().Select(n => fixture.Grains.GetGrain<ITicketGrain>(n).GetAsync()));
        Assert.Equal(70, owners.Length);
        Assert.All(owners, t => Assert.Equal(a.CustomerId, t!.CustomerId));
    }

    [Fact]
    public async Task Detaching_an_identity_gives_it_a_customer_of_its_own()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("dt-1", phone));
        var identity = GrainKeys.Identity(IdentityKind.Phone, phone, scenario.Channel);

        var detached = await fixture.Grains.GetGrain<IIdentityGrain>(identity).DetachAsync("agent");

        Assert.NotEqual(first.CustomerId, detached);
        // The old profile hears of it by a one-way notification.
        await Eventually.WaitForAsync(() => fixture.Grains.GetGrain<ICustomerGrain>(first.CustomerId).GetAsync(), c => c!.Identities.Count == 0,
            TimeSpan.FromSeconds(10), "the old customer to drop the identity");
        Assert.Single((await fixture.Grains.GetGrain<ICustomerGrain>(detached).GetAsync())!.Identities);
    }

    [Fact]
    public async Task Profile_changes_are_kept()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("pf-1", GrainScenario.NewPhone()));
        var customer = fixture.Grains.GetGrain<ICustomerGrain>(first.CustomerId);
        await customer.UpdateProfileAsync(new CustomerProfileChange
        {
            Name = "王小明", Language = "zh", CustomFields = new Dictionary<string, string?> { ["plan"] = "gold", ["unused"] = null },
        }, "agent");
        var snapshot = (await customer.GetAsync())!;
        Assert.Equal("王小明", snapshot.Name);
        Assert.Equal("zh", snapshot.Language);
        Assert.Equal("gold", snapshot.CustomFields["plan"]);
        Assert.False(snapshot.CustomFields.ContainsKey("unused"));
    }
}
