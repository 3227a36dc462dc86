using System.Net;
using System.Net.Sockets;

namespace Crm.Connectors.Api.Http;

/// <summary>
/// Which IP addresses a webhook may connect to. A webhook URL is set by an admin, but its host name resolves to
/// whatever its DNS says at the moment we connect, so without this check a webhook could reach the service's own
/// loopback, the cloud metadata endpoint (169.254.169.254) or the internal network (SSRF). Pure, so it is tested
/// address by address; <see cref="WebhookConnector"/> applies it to every resolved address before connecting.
/// </summary>
internal static class WebhookAddressRules
{
    /// <summary>Why a connection to <paramref name="address"/> is refused, or null when it is a public address.</summary>
    public static string? WhyRefused(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork)
            return WhyRefusedV4(address.GetAddressBytes());
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            return $"not an IP address ({address.AddressFamily})";

        var b = address.GetAddressBytes();
        if (address.Equals(IPAddress.IPv6None) || address.Equals(IPAddress.IPv6Any))
            return "unspecified address";
        if (address.Equals(IPAddress.IPv6Loopback))
            return "loopback";
        // ::ffff:a.b.c.d (IPv4-mapped) connects to a.b.c.d; ::a.b.c.d (the deprecated IPv4-compatible form) and
        // 64:ff9b::a.b.c.d (NAT64) may, depending on the network, so all three are judged by the IPv4 address inside.
        if (address.IsIPv4MappedToIPv6 || b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0
            || (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0))
        {
            var inner = WhyRefusedV4(b[12..]);
            return inner is null ? null : $"{inner} (IPv4 {new IPAddress(b[12..])} inside IPv6)";
        }
        // 6to4 (2002:a.b.c.d::/48) routes to the IPv4 address in bytes 2-5; judge that address.
        if (b[0] == 0x20 && b[1] == 0x02 && WhyRefusedV4(b[2..6]) is { } sixToFour)
            return $"{sixToFour} (IPv4 {new IPAddress(b[2..6])} inside 6to4)";
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00)
            return "Teredo (2001::/32)";
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
            return "documentation (2001:db8::/32)";
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0x00 && b[5] == 0x01)
            return "local-use NAT64 (64:ff9b:1::/48)";
        if (b[0] == 0xff)
            return "multicast";
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
            return "link-local (fe80::/10)";
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
            return "site-local (fec0::/10, deprecated)";
        if ((b[0] & 0xfe) == 0xfc)
            return "unique local (fc00::/7)";
        return null;
    }

    private static string? WhyRefusedV4(byte[] b) => b switch
    {
        [0, ..] => "unspecified address (0.0.0.0/8)",
        [127, ..] => "loopback (127.0.0.0/8)",
        [10, ..] => "private (10.0.0.0/8)",
        [172, >= 16 and <= 31, ..] => "private (172.16.0.0/12)",
        [192, 168, ..] => "private (192.168.0.0/16)",
        [169, 254, ..] => "link-local (169.254.0.0/16)",
        [100, >= 64 and <= 127, ..] => "shared address space (CGNAT, 100.64.0.0/10)",
        [192, 0, 0, _] => "IETF protocol assignments (192.0.0.0/24)",
        [192, 0, 2, _] or [198, 51, 100, _] or [203, 0, 113, _] => "documentation (TEST-NET)",
        [198, 18 or 19, ..] => "benchmarking (198.18.0.0/15)",
        [255, 255, 255, 255] => "broadcast",
        [>= 224 and <= 239, ..] => "multicast (224.0.0.0/4)",
        [>= 240, ..] => "reserved (240.0.0.0/4)",
        _ => null,
    };
}
