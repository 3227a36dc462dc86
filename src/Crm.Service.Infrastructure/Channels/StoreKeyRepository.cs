using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Channels;

/// <summary>
/// The Data Protection key ring in the store (table DataProtectionKeys, the EF Core key repository), so every node on
/// the store shares one ring: a visitor token or a channel secret protected on one node is read on any other. Keys are
/// encrypted at rest (<see cref="KeyRingEncryptor"/>). On first use in a process the ring is brought up to date once:
/// rows written before the ring was encrypted are encrypted in place (review W3), and keys that earlier versions wrote
/// to the data folder (<c>{DataDirectory}/keys</c>) are imported into the store (review W4), so tokens, cookies and
/// secrets protected with them stay readable on every node, and after the folder is gone.
/// </summary>
internal sealed class StoreKeyRepository(
    EntityFrameworkCoreXmlRepository<Store.CrmDbContext> store,
    IDbContextFactory<Store.CrmDbContext> contexts,
    KeyRingEncryptor encryptor,
    FileSystemXmlRepository? legacy) : IXmlRepository
{
    private readonly Lock _gate = new();
    private bool _upgraded;

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        lock (_gate)
        {
            if (!_upgraded)
            {
                Upgrade();
                _upgraded = true;
            }
        }
        return store.GetAllElements();
    }

    public void StoreElement(XElement element, string friendlyName) => store.StoreElement(element, friendlyName);

    /// <summary>Idempotent: an encrypted row is left alone, a folder key already in the store (by key id) is not stored
    /// again, so nodes that start together or a restart change nothing twice.</summary>
    private void Upgrade()
    {
        using var db = contexts.CreateDbContext();
        var ids = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var row in db.DataProtectionKeys.ToList())
        {
            if (row.Xml is null)
                continue;
            var element = XElement.Parse(row.Xml);
            if ((string?)element.Attribute("id") is { } id)
                ids.Add(id);
            if (encryptor.EncryptSecrets(element) is { } encrypted)
                row.Xml = encrypted.ToString(SaveOptions.DisableFormatting);
        }
        if (legacy is not null)
            foreach (var element in legacy.GetAllElements())
            {
                var id = (string?)element.Attribute("id");
                if (element.Name.LocalName != "key" || id is null || !ids.Add(id))
                    continue;
                var encrypted = encryptor.EncryptSecrets(element) ?? element;
                db.DataProtectionKeys.Add(new DataProtectionKey { FriendlyName = "key-" + id, Xml = encrypted.ToString(SaveOptions.DisableFormatting) });
            }
        db.SaveChanges();
    }
}
