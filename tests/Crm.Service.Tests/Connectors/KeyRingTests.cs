using System.Xml.Linq;
using Crm.Service.Tests.Support;
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

        // The folder is gone (a new machine, a cleaned data folder): its key lives on in the store.
        Directory.Delete(Path.Combine(data.Path, "keys"), recursive: true);
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
