using System.Net;
using System.Net.Sockets;

namespace Crm.Connectors.Api.Http;

/// <summary>
/// The connect step of the webhook client: resolves the host itself, drops every address
/// <see cref="WebhookAddressRules"/> refuses, and connects only to an address that passed. Checking at connect time,
/// on the very address connected to, is what stops DNS rebinding: a check of the URL before sending would resolve
/// the name once and the connection would resolve it again, possibly to 127.0.0.1.
/// </summary>
internal static class WebhookConnector
{
    public static async ValueTask<Stream> ConnectAsync(DnsEndPoint endPoint, bool allowPrivateNetworks, CancellationToken cancellationToken)
    {
        var host = endPoint.Host.TrimStart('[').TrimEnd(']');
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);
        var refused = allowPrivateNetworks ? [] : addresses.Select(a => (Address: a, Why: WebhookAddressRules.WhyRefused(a))).Where(a => a.Why is not null).ToList();
        var allowed = addresses.Where(a => !refused.Any(r => r.Address.Equals(a))).ToList();
        if (allowed.Count == 0)
            throw new WebhookAddressRefusedException(host, refused.Select(r => $"{r.Address} ({r.Why})").ToList());

        SocketException? last = null;
        foreach (var address in allowed)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, endPoint.Port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }
}

/// <summary>A webhook host resolved only to addresses the service must not connect to.</summary>
internal sealed class WebhookAddressRefusedException(string host, IReadOnlyList<string> refused)
    : Exception(refused.Count == 0
        ? $"{host} resolves to no address."
        : $"{host} resolves only to refused addresses: {string.Join(", ", refused)}. Set Channels:Api:AllowPrivateNetworkWebhooks=true to allow private networks.")
{
    public string Host { get; } = host;
}
