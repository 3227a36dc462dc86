using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Blobs;

/// <summary>Content-addressed files under data/blobs/ab/cd/{sha256}. A blob is written to a temporary file,
/// fsynced, renamed into place and its directory fsynced, so a crash leaves either the whole blob or none.</summary>
internal sealed partial class FileBlobStore(IOptions<StoreOptions> options) : IBlobStore
{
    private readonly string _root = options.Value.BlobDirectory;

    /// <summary>Sets a stored blob's mtime (a seam: tests make it fail as for a file another user owns).</summary>
    internal Action<string, DateTime> SetLastWriteTime { get; init; } = File.SetLastWriteTimeUtc;

    public async Task<StoredBlob> PutAsync(ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(content.Span));
        var path = PathOf(hash);
        if (File.Exists(path))
        {
            // Written again (mail ingest of bytes already stored): young again, so the orphan sweep's grace covers
            // the time until the caller's row naming it is committed.
            try
            {
                SetLastWriteTime(path, DateTime.UtcNow);
                return new StoredBlob(hash, content.Length);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A file this user cannot touch (a restored backup owned by another user) would keep its old age, and
                // the sweep could delete it before the caller's row is committed (ingest takes no gate). Write the
                // bytes again instead: a new file renamed over it is young (review KB4). If that fails too, the put fails.
            }
        }
        var directory = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{hash}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.Asynchronous))
            {
                await file.WriteAsync(content, cancellationToken);
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
            SyncDirectory(directory);
        }
        finally
        {
            File.Delete(temporary);
        }
        return new StoredBlob(hash, content.Length);
    }

    public Stream? Open(string sha256)
    {
        if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower))
            return null;
        var path = PathOf(sha256);
        return File.Exists(path) ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous) : null;
    }

    public bool Delete(string sha256)
    {
        if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower))
            return false;
        var path = PathOf(sha256);
        if (!File.Exists(path))
            return false;
        File.Delete(path);
        return true;
    }

    public DateTimeOffset? WrittenAt(string sha256)
    {
        if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower))
            return null;
        var file = new FileInfo(PathOf(sha256));
        return file.Exists ? new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero) : null;
    }

    /// <summary>Deletes temporary files a crash left in the middle of a put (".{hash}.{guid}.tmp") written before
    /// <paramref name="writtenBefore"/>; a put in progress is younger than that (KW15). Returns how many went.</summary>
    public int DeleteStaleTemporaries(DateTimeOffset writtenBefore)
    {
        if (!Directory.Exists(_root))
            return 0;
        var deleted = 0;
        foreach (var path in Directory.EnumerateFiles(_root, ".*.tmp", SearchOption.AllDirectories))
        {
            try
            {
                if (File.GetLastWriteTimeUtc(path) < writtenBefore.UtcDateTime)
                {
                    File.Delete(path);
                    deleted++;
                }
            }
            catch (IOException)
            {
            }
        }
        return deleted;
    }

    public IEnumerable<(string Sha256, DateTimeOffset WrittenAt)> List()
    {
        if (!Directory.Exists(_root))
            yield break;
        foreach (var path in Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories))
        {
            var name = Path.GetFileName(path);
            if (name.Length == 64 && name.All(char.IsAsciiHexDigitLower))
                yield return (name, new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero));
        }
    }

    private string PathOf(string hash) => Path.Combine(_root, hash[..2], hash[2..4], hash);

    /// <summary>fsync of the directory makes the rename itself durable (POSIX); .NET has no API for it.</summary>
    internal static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return;
        var fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
            return;
        try
        {
            _ = Fsync(fd);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
