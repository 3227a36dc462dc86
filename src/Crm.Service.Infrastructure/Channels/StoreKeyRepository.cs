using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Infrastructure.Channels;

/// <summary>
/// The Data Protection key ring in the store (table DataProtectionKeys, the EF Core key repository), so every node on
/// the store shares one ring: a visitor token or a channel secret protected on one node is read on any other. Keys are
/// encrypted at rest (<see cref="KeyRingEncryptor"/>). Each time Data Protection reads the ring (first use, and every
/// refresh, so rows an older node wrote plain during a rolling upgrade are caught too) it is brought up to date in one
/// write transaction: rows written before the ring was encrypted are encrypted in place (review W3), and keys and
/// revocations that earlier versions wrote to the data folder (<c>{DataDirectory}/keys</c>) are imported into the store
/// (review W4, KW13), so tokens, cookies and secrets protected with them stay readable on every node, a key revoked there
/// stays revoked, and the folder's plain keys are deleted once the encrypted copies are committed.
/// </summary>
internal sealed class StoreKeyRepository(
    EntityFrameworkCoreXmlRepository<Store.CrmDbContext> store,
    IDbContextFactory<Store.CrmDbContext> contexts,
    KeyRingEncryptor encryptor,
    DirectoryInfo? legacyFolder,
    ILogger? logger = null) : IXmlRepository
{
    private readonly Lock _gate = new();

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        lock (_gate)
            Upgrade();
        return store.GetAllElements();
    }

    public void StoreElement(XElement element, string friendlyName) => store.StoreElement(element, friendlyName);

    /// <summary>Idempotent, and atomic across nodes (review KW14): the read and the writes are one BEGIN IMMEDIATE
    /// transaction, so two nodes starting together cannot both import one folder key; an encrypted row is left alone, a
    /// folder key or revocation already in the store is not stored again. A crash before the commit changes nothing;
    /// the folder's files are deleted only after it.</summary>
    internal void Upgrade()
    {
        using var db = contexts.CreateDbContext();
        // Microsoft.Data.Sqlite begins IMMEDIATE: the write lock is taken before the rows are read.
        using var transaction = db.Database.BeginTransaction();
        var ids = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var stored = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in db.DataProtectionKeys.ToList())
        {
            if (row.Xml is null)
                continue;
            var element = XElement.Parse(row.Xml);
            stored.Add(element.ToString(SaveOptions.DisableFormatting));
            if ((string?)element.Attribute("id") is { } id)
                ids.Add(id);
            if (encryptor.EncryptSecrets(element) is { } encrypted)
                row.Xml = encrypted.ToString(SaveOptions.DisableFormatting);
        }
        var imported = new List<string>();
        var legacy = LegacyElements(out var unreadableRevocation);
        foreach (var (file, element) in legacy)
        {
            var xml = element.ToString(SaveOptions.DisableFormatting);
            switch (element.Name.LocalName)
            {
                // Review WC5: with a revocation file that cannot be read, a key it revoked would be imported as valid, so
                // no key of the folder is imported until it can be read (what they protected stays unreadable: fail closed).
                case "key" when unreadableRevocation:
                    continue;
                case "key" when (string?)element.Attribute("id") is { } id:
                    if (ids.Add(id))
                        db.DataProtectionKeys.Add(new DataProtectionKey { FriendlyName = "key-" + id, Xml = (encryptor.EncryptSecrets(element) ?? element).ToString(SaveOptions.DisableFormatting) });
                    break;
                case "revocation":
                    // A key revoked in the folder stays revoked (review KW13); revocations hold no secret.
                    if (stored.Add(xml))
                        db.DataProtectionKeys.Add(new DataProtectionKey { FriendlyName = "revocation-" + ((string?)element.Element("key")?.Attribute("id") ?? "all"), Xml = xml });
                    break;
                default:
                    continue;
            }
            imported.Add(file);
        }
        db.SaveChanges();
        transaction.Commit();
        // Only now that the encrypted copies are committed (synchronous=FULL) are the plain keys removed from the folder.
        // This runs on every ring read (review WV7): another node sharing the folder may delete the same files and the
        // folder at once, which is no failure; a file or folder left behind is tried again at the next read.
        try
        {
            foreach (var file in imported)
                File.Delete(file);
            if (legacyFolder is not null && imported.Count > 0 && Directory.Exists(legacyFolder.FullName) && !Directory.EnumerateFileSystemEntries(legacyFolder.FullName).Any())
                Directory.Delete(legacyFolder.FullName);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger?.LogDebug(ex, "The old key folder {Folder} was not cleaned up", legacyFolder?.FullName);
        }
    }

    /// <summary>The keys and revocations of the old folder; a file another node deleted meanwhile is skipped, and so is
    /// (left in place, logged) one that cannot be read or is not XML (review WV7: it must not fail every ring read).
    /// <paramref name="unreadableRevocation"/>: such a file is a revocation (<c>revocation-*.xml</c>, Data Protection's
    /// name), so the folder's keys must not be trusted (review WC5).</summary>
    private List<(string File, XElement Element)> LegacyElements(out bool unreadableRevocation)
    {
        unreadableRevocation = false;
        var elements = new List<(string File, XElement Element)>();
        if (legacyFolder is null || !Directory.Exists(legacyFolder.FullName))
            return elements;
        string[] files;
        try
        {
            files = Directory.GetFiles(legacyFolder.FullName, "*.xml");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Another node removed the folder meanwhile, or it is not readable: nothing to import.
            return elements;
        }
        foreach (var file in files)
        {
            XElement element;
            try
            {
                element = XElement.Parse(File.ReadAllText(file));
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                continue;
            }
            catch (Exception ex) when (ex is System.Xml.XmlException or IOException or UnauthorizedAccessException)
            {
                if (Path.GetFileName(file).StartsWith("revocation", StringComparison.OrdinalIgnoreCase))
                {
                    unreadableRevocation = true;
                    logger?.LogError(ex, "The old key revocation file {File} cannot be read: no key of {Folder} is imported until it can be (a key it revokes must not become valid)", file, legacyFolder.FullName);
                }
                else
                    logger?.LogWarning(ex, "The old key file {File} cannot be read and is left in place; no key is imported from it", file);
                continue;
            }
            elements.Add((file, element));
        }
        return elements;
    }
}
