using Microsoft.AspNetCore.Http;

namespace Crm.Connectors.Api.Http;

/// <summary>
/// Reads a request body up to a limit into a buffer that grows as bytes arrive. Content-Length is only used to refuse
/// early: an unauthenticated caller's claim of 20 MiB must not make us allocate 20 MiB before it sent anything.
/// </summary>
internal static class RequestBodyReader
{
    private const int ChunkBytes = 16 * 1024;

    /// <summary>The body, or null when it is (or claims to be) longer than <paramref name="limit"/>.</summary>
    public static async Task<byte[]?> ReadAsync(Stream body, long? declaredLength, long limit, CancellationToken cancellationToken)
    {
        if (declaredLength > limit)
            return null;
        var buffer = new byte[ChunkBytes];
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length >= limit + 1)
                        return null;
                    // Doubling, capped one byte past the limit: that byte is how an over-long body is noticed.
                    Array.Resize(ref buffer, (int)Math.Min(limit + 1, (long)buffer.Length * 2));
                }
                var read = await body.ReadAsync(buffer.AsMemory(length), cancellationToken);
                if (read == 0)
                    break;
                length += read;
                if (length > limit)
                    return null;
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Kestrel's per-request limit (set by the endpoint) stopped the body.
            return null;
        }
        return buffer[..length];
    }
}
