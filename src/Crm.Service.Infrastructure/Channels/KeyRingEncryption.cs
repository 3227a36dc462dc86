using System.Security.Cryptography;
using System.Xml.Linq;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Channels;

/// <summary>
/// The key that encrypts the Data Protection key ring at rest in the store (review W3): AES-256-GCM under
/// <c>Store:KeyRingKey</c> (base64, 32 bytes; set it from a secret store in production), else a random key kept in a
/// file next to the database (<c>{DatabaseFile}.keyring-key</c>, created on first start, owner-only), so every node on
/// the database finds it. A copy of crm.db alone (a dump, a stolen backup) then holds no usable key.
/// </summary>
internal sealed class KeyRingKey(IOptions<StoreOptions> options, Microsoft.EntityFrameworkCore.IDbContextFactory<CrmDbContext> contexts)
{
    // PublicationOnly: a failure (an unreadable file, a store not reachable yet) is not cached for the life of the
    // process; the next protect or unprotect tries again (review KW8).
    private readonly Lazy<byte[]> _key = new(() => Load(options.Value, () => RingIsEncrypted(contexts)), LazyThreadSafetyMode.PublicationOnly);

    public byte[] Value => _key.Value;

    /// <summary>Whether the store already holds a key secret encrypted under some key-ring key.</summary>
    private static bool RingIsEncrypted(Microsoft.EntityFrameworkCore.IDbContextFactory<CrmDbContext> contexts)
    {
        using var db = contexts.CreateDbContext();
        return db.DataProtectionKeys.Any(k => k.Xml != null && k.Xml.Contains("keyRingSecret"));
    }

    /// <param name="beforeWrite">Test hook: runs after the new key's file is created and before its bytes are written
    /// (a slow disk), to show that no reader ever sees a key file without its key.</param>
    /// <param name="beforeReplace">Test hook: runs after an empty key file was found still empty, before the new key
    /// replaces it, to show that two loaders never both replace it (review WV4).</param>
    internal static byte[] Load(StoreOptions store, Func<bool> ringIsEncrypted, Action? beforeWrite = null, Action? beforeReplace = null)
    {
        if (!string.IsNullOrWhiteSpace(store.KeyRingKey))
        {
            var configured = Convert.FromBase64String(store.KeyRingKey.Trim());
            return configured.Length == 32 ? configured : throw new InvalidOperationException("Store:KeyRingKey must be 32 bytes, base64-encoded.");
        }
        var path = store.KeyRingKeyPath;
        if (ReadKeyWhenUnlocked(path) is { } existing)
            return existing;
        // A new key would leave every stored secret and visitor token unreadable while the node looked healthy: a
        // store whose ring is already encrypted without its key is an operator's problem to solve (review KW2).
        if (ringIsEncrypted())
            throw new InvalidOperationException($"The key ring in {store.DatabasePath} is encrypted, but its key file {path} is missing or does not hold a key. " +
                "Restore the file from the backup taken with the database (or set Store:KeyRingKey to its value); starting with a new key would make every stored secret unreadable.");
        // No key and nothing encrypted yet (a first start, or an empty file an earlier version left by a crash between
        // creating and writing it): make the key atomically (review KW8).
        CreateKey(path, File.Exists(path), beforeWrite, beforeReplace);
        return ReadKeyWhenUnlocked(path) ?? throw new InvalidOperationException($"{path} does not hold a 32-byte base64 key.");
    }

    /// <summary><see cref="ReadKey"/>, waiting while another loader holds the empty key file locked to replace it.</summary>
    private static byte[]? ReadKeyWhenUnlocked(string path)
    {
        for (var waited = TimeSpan.Zero; ; waited += LockPoll)
        {
            try
            {
                return ReadKey(path);
            }
            catch (IOException) when (waited < LockWait)
            {
                Thread.Sleep(LockPoll);
            }
        }
    }

    private static readonly TimeSpan LockPoll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LockWait = TimeSpan.FromSeconds(30);

    /// <summary>The key in <paramref name="path"/>; null when there is no file or it is empty (a crash of an earlier
    /// version between creating and writing it); an error when it holds something else (never overwritten).</summary>
    private static byte[]? ReadKey(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        if (text.Length == 0)
            return null;
        byte[] key;
        try
        {
            key = Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            key = [];
        }
        return key.Length == 32 ? key : throw new InvalidOperationException($"{path} does not hold a 32-byte base64 key; restore it from the backup taken with the database.");
    }

    /// <summary>Writes a fresh key to a temporary owner-only file, syncs it, moves it into place and syncs the folder, so a
    /// crash at any step leaves either no key file (the next start makes one; nothing was encrypted with a key not yet
    /// durable) or the whole key. Two nodes at once: the move does not overwrite, so the first key wins and both read it.
    /// An empty file of an earlier version's crash (<paramref name="replaceEmpty"/>) is replaced.</summary>
    private static void CreateKey(string path, bool replaceEmpty, Action? beforeWrite, Action? beforeReplace)
    {
        var folder = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(folder);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var file = new FileStream(temp, create))
            {
                beforeWrite?.Invoke();
                file.Write(System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))));
                file.Flush(flushToDisk: true);
            }
            if (replaceEmpty)
                ReplaceEmpty(path, temp, beforeReplace);
            else
            {
                try
                {
                    File.Move(temp, path, overwrite: false);
                }
                catch (IOException) when (File.Exists(path))
                {
                }
            }
            // The rename is durable before any secret is encrypted under the key.
            Blobs.FileBlobStore.SyncDirectory(folder);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Replaces an empty key file with <paramref name="temp"/>'s key, only while it is still empty (review WV4):
    /// a check and then a move let two loaders both see it empty and both replace it, and the first key, already
    /// published and used, was overwritten. The check and the move now happen under an exclusive lock on the empty file
    /// (FileShare.None: flock on Unix); a loader that finds it locked leaves it to the holder, whose key it then reads.
    /// After the move the path names the new file, so a later locker sees the key and replaces nothing.</summary>
    private static void ReplaceEmpty(string path, string temp, Action? beforeReplace)
    {
        FileStream claim;
        try
        {
            claim = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        }
        catch (FileNotFoundException)
        {
            return;
        }
        catch (IOException)
        {
            return; // another loader holds it: ReadKeyWhenUnlocked waits for its key.
        }
        using (claim)
        {
            if (claim.Length != 0)
                return;
            beforeReplace?.Invoke();
            File.Move(temp, path, overwrite: true);
        }
    }

    public XElement Encrypt(XElement plain)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(plain.ToString(SaveOptions.DisableFormatting));
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var tag = new byte[AesGcm.TagByteSizes.MaxSize];
        var cipher = new byte[bytes.Length];
        using (var aes = new AesGcm(Value, tag.Length))
            aes.Encrypt(nonce, bytes, cipher, tag);
        return new XElement("keyRingSecret", new XAttribute("v", "1"), Convert.ToBase64String([.. nonce, .. tag, .. cipher]));
    }

    public XElement Decrypt(XElement encrypted)
    {
        var all = Convert.FromBase64String(encrypted.Value);
        var nonceSize = AesGcm.NonceByteSizes.MaxSize;
        var tagSize = AesGcm.TagByteSizes.MaxSize;
        var plain = new byte[all.Length - nonceSize - tagSize];
        using (var aes = new AesGcm(Value, tagSize))
            aes.Decrypt(all.AsSpan(0, nonceSize), all.AsSpan(nonceSize + tagSize), all.AsSpan(nonceSize, tagSize), plain);
        return XElement.Parse(System.Text.Encoding.UTF8.GetString(plain));
    }
}

/// <summary>Encrypts each new key's secret with <see cref="KeyRingKey"/> before Data Protection stores it.</summary>
internal sealed class KeyRingEncryptor(KeyRingKey key) : IXmlEncryptor
{
    public EncryptedXmlInfo Encrypt(XElement plaintextElement) => new(key.Encrypt(plaintextElement), typeof(KeyRingDecryptor));

    /// <summary>Data Protection's marker of a key's secret part, and the element that wraps an encrypted one (the
    /// format its own XmlEncryptionExtensions write), so a key encrypted here reads like one it encrypted itself.</summary>
    private static readonly XNamespace Ns = "http://schemas.asp.net/2015/03/dataProtection";

    internal static readonly XName RequiresEncryption = Ns + "requiresEncryption";

    internal static readonly XName EncryptedSecret = Ns + "encryptedSecret";

    /// <summary>A copy of <paramref name="element"/> with every secret part encrypted (for keys written before the ring
    /// was encrypted: rows of the store and the old key folder); null when there was nothing to encrypt.</summary>
    public XElement? EncryptSecrets(XElement element)
    {
        var copy = new XElement(element);
        var secrets = copy.Descendants().Where(e => (bool?)e.Attribute(RequiresEncryption) == true).ToList();
        if (secrets.Count == 0)
            return null;
        foreach (var secret in secrets)
        {
            var info = Encrypt(secret);
            secret.ReplaceWith(new XElement(EncryptedSecret, new XAttribute("decryptorType", info.DecryptorType.AssemblyQualifiedName!), info.EncryptedElement));
        }
        return copy;
    }
}

/// <summary>Created by Data Protection from the type named in each encrypted key (with the service provider).</summary>
internal sealed class KeyRingDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement) => services.GetRequiredService<KeyRingKey>().Decrypt(encryptedElement);
}
