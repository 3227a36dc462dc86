using System.Xml.Linq;
using Crm.Service.Infrastructure.Channels;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Connectors;

/// <summary>Review W3/W4: the Data Protection key ring in the store is encrypted at rest (rows written plain by an
/// earlier version are encrypted in place), and the keys of the old key folder are imported into the store once, so
/// tokens and secrets protected with them still open after the upgrade, on any node, and after the folder is gone.</summary>
public sealed class KeyRingTests
{
    private const string Purpose = "Crm.WebChat.VisitorToken.v1";

    /// <summary>A standalone ring of the app's name in <paramref name="folder"/> (plain XML on Linux, as earlier versions
    /// wrote it), its one key's XML and that key's secret.</summary>
    private static (IDataProtector Protector, string Xml, string Secret) PlainRing(string folder)
    {
        var protector = DataProtectionProvider.Create(new DirectoryInfo(folder), b => b.SetApplicationName("Crm.Service")).CreateProtector(Purpose);
        protector.Protect("warm-up: creates the key");
        var xml = File.ReadAllText(Directory.GetFiles(folder, "*.xml").Single());
        var secret = XElement.Parse(xml).Descendants("value").Single().Value;
        Assert.True(secret.Length > 20);
        return (protector, xml, secret);
    }

    private static IDataProtector Protector(CrmApp app) => app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector(Purpose);

    [Fact]
    public async Task Keys_of_the_old_folder_are_imported_once_plain_rows_are_encrypted_and_what_they_protected_still_opens()
    {
        using var data = new TempDirectory();
        using var other = new TempDirectory();
        // Before the upgrade: the ring in {data}/keys.
        var (folderRing, _, folderSecret) = PlainRing(Path.Combine(data.Path, "keys"));
        var folderToken = folderRing.Protect("a visitor token of before the upgrade");
        // A key an earlier version stored in the database unencrypted.
        var (rowRing, rowXml, rowSecret) = PlainRing(other.Path);
        var rowToken = rowRing.Protect("a channel secret protected with a plain stored key");

        await using (var first = new CrmApp(data.Path))
        {
            Assert.Equal("a visitor token of before the upgrade", Protector(first).Unprotect(folderToken));
            await first.QueryAsync(async db =>
            {
                db.DataProtectionKeys.Add(new DataProtectionKey { FriendlyName = "plain-of-before", Xml = rowXml });
                return await db.SaveChangesAsync();
            });
        }

        // The folder's plain keys were deleted once their encrypted copies were committed (review KW13): its key lives
        // on in the store only.
        Assert.False(Directory.Exists(Path.Combine(data.Path, "keys")) && Directory.GetFiles(Path.Combine(data.Path, "keys"), "*.xml").Length > 0);
        await using var second = new CrmApp(data.Path);
        Assert.Equal("a visitor token of before the upgrade", Protector(second).Unprotect(folderToken));
        Assert.Equal("a channel secret protected with a plain stored key", Protector(second).Unprotect(rowToken));
        // A new key is made encrypted too.
        Assert.NotNull(Protector(second).Protect("new"));

        var rows = await second.QueryAsync(db => db.DataProtectionKeys.AsNoTracking().ToListAsync());
        Assert.True(rows.Count >= 2);
        Assert.All(rows, row =>
        {
            Assert.DoesNotContain(folderSecret, row.Xml!, StringComparison.Ordinal);
            Assert.DoesNotContain(rowSecret, row.Xml!, StringComparison.Ordinal);
            Assert.Contains("encryptedSecret", row.Xml!, StringComparison.Ordinal);
            Assert.Empty(XElement.Parse(row.Xml!).Descendants("value"));
        });
        // Imported once: one row per key id.
        var ids = rows.Select(r => (string?)XElement.Parse(r.Xml!).Attribute("id")).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public async Task A_store_whose_ring_is_encrypted_refuses_to_make_a_new_key_when_its_key_file_is_missing()
    {
        using var data = new TempDirectory();
        string token;
        await using (var first = new CrmApp(data.Path))
            token = Protector(first).Protect("a channel secret");
        var keyFile = Directory.GetFiles(data.Path, "*.keyring-key", SearchOption.AllDirectories).Single();
        File.Delete(keyFile);

        // Without its key the ring cannot be read; a fresh key would silently orphan every stored secret (review KW2).
        Exception? failure = null;
        try
        {
            await using var second = new CrmApp(data.Path);
            Protector(second).Unprotect(token);
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        Assert.NotNull(failure);
        var messages = string.Join(" | ", Chain(failure));
        Assert.Contains("key file", messages, StringComparison.Ordinal);
        Assert.False(File.Exists(keyFile), "a new key file was made over an encrypted ring");
    }

    /// <summary>Review KW13: a key revoked in the old folder stays revoked after the import (what it protected no longer
    /// opens), and the folder's plain key files are gone once the store holds them encrypted.</summary>
    [Fact]
    public async Task A_key_revoked_in_the_old_folder_stays_revoked_after_the_import_and_the_plain_files_are_removed()
    {
        using var data = new TempDirectory();
        var folder = Path.Combine(data.Path, "keys");
        var (ring, _, secret) = PlainRing(folder);
        var token = ring.Protect("protected before the key was revoked");
        var services = new ServiceCollection().AddDataProtection().SetApplicationName("Crm.Service").PersistKeysToFileSystem(new DirectoryInfo(folder)).Services.BuildServiceProvider();
        services.GetRequiredService<IKeyManager>().RevokeAllKeys(DateTimeOffset.UtcNow.AddMinutes(1), "compromised");
        Assert.Contains(Directory.GetFiles(folder, "*.xml"), f => Path.GetFileName(f).StartsWith("revocation", StringComparison.Ordinal));

        await using var app = new CrmApp(data.Path);
        var failure = Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => Protector(app).Unprotect(token));
        Assert.Contains("revoked", failure.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(Directory.Exists(folder) && Directory.GetFiles(folder, "*.xml").Length > 0, "plain keys left in the folder");
        var rows = await app.QueryAsync(db => db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync());
        Assert.Contains(rows, xml => xml.StartsWith("<revocation", StringComparison.Ordinal));
        Assert.All(rows, xml => Assert.DoesNotContain(secret, xml, StringComparison.Ordinal));
    }

    /// <summary>Review WV7: the old folder is looked at on every ring read; a file in it that is not XML fails no read
    /// (it is skipped and left in place, the good key beside it is imported), and protecting and unprotecting work.</summary>
    [Fact]
    public async Task A_malformed_file_in_the_old_key_folder_fails_no_ring_read_and_is_left_in_place()
    {
        using var data = new TempDirectory();
        var folder = Path.Combine(data.Path, "keys");
        var (ring, _, _) = PlainRing(folder);
        var token = ring.Protect("protected with the folder's key");
        var garbage = Path.Combine(folder, "garbage.xml");
        File.WriteAllText(garbage, "<key id=\"not closed\"");

        await using var app = new CrmApp(data.Path);
        Assert.Equal("protected with the folder's key", Protector(app).Unprotect(token));
        Assert.Equal("new", Protector(app).Unprotect(Protector(app).Protect("new")));
        Assert.True(File.Exists(garbage));
        Assert.Equal([garbage], Directory.GetFiles(folder, "*.xml"));
    }

    /// <summary>Review WC5: a revocation file of the old folder that cannot be read (truncated) must not let the key it
    /// revoked in as valid: no key of the folder is imported while it cannot be read, so what the key protected stays
    /// unreadable, and the files stay in place.</summary>
    [Fact]
    public async Task An_unreadable_revocation_in_the_old_key_folder_keeps_the_revoked_key_out()
    {
        using var data = new TempDirectory();
        var folder = Path.Combine(data.Path, "keys");
        var (ring, _, _) = PlainRing(folder);
        var token = ring.Protect("protected before the key was revoked");
        var services = new ServiceCollection().AddDataProtection().SetApplicationName("Crm.Service").PersistKeysToFileSystem(new DirectoryInfo(folder)).Services.BuildServiceProvider();
        services.GetRequiredService<IKeyManager>().RevokeAllKeys(DateTimeOffset.UtcNow.AddMinutes(1), "compromised");
        var revocation = Directory.GetFiles(folder, "revocation*.xml").Single();
        File.WriteAllText(revocation, File.ReadAllText(revocation)[..40]);

        await using var app = new CrmApp(data.Path);
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => Protector(app).Unprotect(token));
        Assert.Equal("new", Protector(app).Unprotect(Protector(app).Protect("new")));
        Assert.Equal(2, Directory.GetFiles(folder, "*.xml").Length);
    }

    /// <summary>Review KW14: nodes that start together bring the ring up to date once: two upgrades at once import each
    /// folder key once.</summary>
    [Fact]
    public async Task Two_upgrades_at_once_import_each_folder_key_once()
    {
        using var data = new TempDirectory();
        using var folders = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        _ = app.Services;
        var contexts = app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
        var encryptor = app.Services.GetRequiredService<KeyRingEncryptor>();
        var logs = app.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>();
        for (var round = 0; round < 5; round++)
        {
            // Each node has its own copy of the old folder (the files are deleted after each import).
            var (_, xml, _) = PlainRing(Path.Combine(folders.Path, "source" + round));
            var repositories = Enumerable.Range(0, 4).Select(n =>
            {
                var copy = Directory.CreateDirectory(Path.Combine(folders.Path, $"node{n}-{round}"));
                File.WriteAllText(Path.Combine(copy.FullName, "key.xml"), xml);
                return new StoreKeyRepository(new EntityFrameworkCoreXmlRepository<CrmDbContext>(app.Services, logs), contexts, encryptor, copy);
            }).ToList();
            using var start = new Barrier(repositories.Count);
            await Task.WhenAll(repositories.Select(r => Task.Run(() =>
            {
                start.SignalAndWait();
                r.Upgrade();
            })));
        }
        var ids = await app.QueryAsync(db => db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync());
        var keyIds = ids.Select(x => (string?)XElement.Parse(x).Attribute("id")).Where(id => id is not null).ToList();
        Assert.Equal(keyIds.Count, keyIds.Distinct().Count());
        Assert.True(keyIds.Count >= 5);
    }

    /// <summary>Review KW8: the key file is written to a temporary file, synced and moved into place, so no reader ever
    /// sees a key file without its key: loads at once against one path, with a slow writer, all get the same key. A crash
    /// at any step leaves a usable state: a stray temporary file is ignored, and an empty key file (an earlier version's
    /// crash between creating and writing it) is replaced while nothing is encrypted yet.</summary>
    [Fact]
    public async Task The_key_file_is_made_atomically_and_a_crash_at_any_step_leaves_a_usable_ring()
    {
        using var data = new TempDirectory();
        var store = new StoreOptions { DataDirectory = data.Path };
        var keys = await Task.WhenAll(Enumerable.Range(0, 6).Select(n => Task.Run(() =>
            KeyRingKey.Load(store, () => false, beforeWrite: () => Thread.Sleep(200)))));
        Assert.All(keys, k => Assert.Equal(keys[0], k));
        Assert.Empty(Directory.GetFiles(data.Path, "*.tmp"));

        // A crash after the temporary file was made, before it was moved: the next start makes the key.
        using var crashed = new TempDirectory();
        var crashedStore = new StoreOptions { DataDirectory = crashed.Path };
        File.WriteAllText(crashedStore.KeyRingKeyPath + ".0123.tmp", "");
        await using (var app = new CrmApp(crashed.Path))
            Assert.NotNull(Protector(app).Protect("works"));

        // An empty key file of an earlier version, nothing encrypted yet: replaced; the app works and keeps working.
        using var empty = new TempDirectory();
        var emptyStore = new StoreOptions { DataDirectory = empty.Path };
        File.WriteAllText(emptyStore.KeyRingKeyPath, "");
        string token;
        await using (var app = new CrmApp(empty.Path))
            token = Protector(app).Protect("kept");
        Assert.Equal(44, File.ReadAllText(emptyStore.KeyRingKeyPath).Trim().Length);
        await using (var again = new CrmApp(empty.Path))
            Assert.Equal("kept", Protector(again).Unprotect(token));

        // An empty key file over an encrypted ring: a clear error, never a new key.
        File.WriteAllText(emptyStore.KeyRingKeyPath, "");
        var error = Assert.Throws<InvalidOperationException>(() => KeyRingKey.Load(emptyStore, () => true));
        Assert.Contains("missing or does not hold a key", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, new FileInfo(emptyStore.KeyRingKeyPath).Length);
    }

    /// <summary>Review WV4: loaders at once that all find an empty key file (an earlier version's crash) replace it only
    /// once: every loader gets the key that is in the file, so nothing is encrypted under a key a second loader then
    /// overwrites. The hook holds each replacer (a different time each) between its check and its move, where a check-then-move let each move in turn.</summary>
    [Fact]
    public async Task Loaders_at_once_replace_an_empty_key_file_once_and_all_get_its_key()
    {
        using var data = new TempDirectory();
        var store = new StoreOptions { DataDirectory = data.Path };
        File.WriteAllText(store.KeyRingKeyPath, "");
        var keys = await Task.WhenAll(Enumerable.Range(0, 6).Select(n => Task.Run(() =>
            KeyRingKey.Load(store, () => false, beforeWrite: () => Thread.Sleep(200), beforeReplace: () => Thread.Sleep(300 + 100 * n)))));
        var inFile = Convert.FromBase64String(File.ReadAllText(store.KeyRingKeyPath).Trim());
        Assert.All(keys, k => Assert.Equal(inFile, k));
        Assert.Empty(Directory.GetFiles(data.Path, "*.tmp"));
    }

    private static IEnumerable<string> Chain(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            yield return ex.Message;
            if (ex is AggregateException aggregate)
                foreach (var inner in aggregate.InnerExceptions)
                    foreach (var message in Chain(inner))
                        yield return message;
        }
    }
}
