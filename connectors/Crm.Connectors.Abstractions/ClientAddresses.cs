using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;

namespace Crm.Connectors.Abstractions;

/// <summary>The client address every per-address limit keys on (the edge's and the connectors' alike, so they cannot
/// drift apart): the connection's, which the forwarded-headers middleware has already replaced with the real client's
/// when the request came through a known proxy.</summary>
public static class ClientAddresses
{
    private static readonly byte[] Nat64Prefix = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];

    public static string Of(HttpContext? http) => KeyOf(http?.Connection.RemoteIpAddress);

    /// <summary>
    /// An IPv4 address is its own key. An IPv6 client keys on its /64: one subscriber is routinely given a whole /64
    /// (2^64 addresses), so a per-address budget keyed on the full address would be no budget at all. An IPv4 address
    /// written as IPv6 (::ffff:a.b.c.d, as a dual-stack socket reports it) is the IPv4 client.
    /// </summary>
    public static string KeyOf(IPAddress? address)
    {
        if (address is null)
            return "unknown";
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6 || IPAddress.IsLoopback(address))
            return address.ToString();
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        // IPv6 addresses that carry an IPv4 client: NAT64 (64:ff9b::/96) puts every IPv4 client of a translator in one
        // /64, and 6to4 (2002:v4::/48) gives one IPv4 host 65,536 /64s; both key on the IPv4 address inside.
        if (bytes[..12].SequenceEqual(Nat64Prefix))
            return new IPAddress(bytes[12..]).ToString();
        if (bytes[0] == 0x20 && bytes[1] == 0x02)
            return new IPAddress(bytes[2..6]).ToString();
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }

    /// <summary>The group of an address key (<see cref="KeyOf"/>) that budgets shared by a whole widget count per: an IPv4
    /// address's /24, an IPv6 /64's /48 (what one site or one subscriber is routinely given), so a handful of addresses
    /// from one network cannot spend what every visitor shares. Other keys (loopback, unknown) are their own group.</summary>
    public static string GroupOf(string addressKey)
    {
        var v6 = addressKey.EndsWith("/64", StringComparison.Ordinal);
        if (!IPAddress.TryParse(v6 ? addressKey[..^3] : addressKey, out var address) || IPAddress.IsLoopback(address))
            return addressKey;
        var bytes = address.GetAddressBytes();
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            bytes[3] = 0;
            return new IPAddress(bytes) + "/24";
        }
        if (!v6)
            return addressKey;
        Array.Clear(bytes, 6, 10);
        return new IPAddress(bytes) + "/48";
    }
}
