using System.Net.Http.Headers;
using System.Text;
using Crm.Connectors.Api.Http;

namespace Crm.Service.Tests.Support;

internal static class Signing
{
    public static HttpRequestMessage SignedPost(string url, string secret, string json, DateTimeOffset? at = null) =>
        SignedPost(url, secret, Encoding.UTF8.GetBytes(json), at);

    public static HttpRequestMessage SignedPost(string url, string secret, byte[] body, DateTimeOffset? at = null)
    {
        var timestamp = (at ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds();
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add(RequestSignature.TimestampHeader, timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(RequestSignature.SignatureHeader, RequestSignature.Compute(secret, timestamp, body));
        return request;
    }
}
