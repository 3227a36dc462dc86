using System.Net;
using Crm.Service.Hosting;

namespace Crm.Service.Tests.Api;

/// <summary>What the per-address limits key on.</summary>
public sealed class ClientAddressTests
{
    [Theory]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:3::1", "2001:db8:1:3::/64")]
    [InlineData("fe80::1%2", "fe80::/64")]
    [InlineData("::ffff:203.0.113.7", "203.0.113.7")]
    [InlineData("203.0.113.7", "203.0.113.7")]
    [InlineData("::1", "::1")]
    [InlineData("64:ff9b::1.2.3.4", "1.2.3.4")]
    [InlineData("64:ff9b::5.6.7.8", "5.6.7.8")]
    [InlineData("2002:0102:0304:1::1", "1.2.3.4")]
    [InlineData("2002:0102:0304:ffff::1", "1.2.3.4")]
    public void An_ipv6_client_keys_on_its_64_and_an_ipv4_client_on_its_address(string address, string key) =>
        Assert.Equal(key, ClientAddress.KeyOf(IPAddress.Parse(address)));

    [Fact]
    public void Addresses_of_one_64_share_a_key_and_neighbouring_64s_do_not()
    {
        var one = ClientAddress.KeyOf(IPAddress.Parse("2001:db8:aa:bb:1::1"));
        Assert.Equal(one, ClientAddress.KeyOf(IPAddress.Parse("2001:db8:aa:bb:dead:beef:0:1")));
        Assert.NotEqual(one, ClientAddress.KeyOf(IPAddress.Parse("2001:db8:aa:bc::1")));
        Assert.Equal("unknown", ClientAddress.KeyOf(null));
    }
}
