using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace Crm.Service.Infrastructure.Channels;

/// <summary>
/// The Data Protection key ring in the store (table DataProtectionKeys, the EF Core key repository), so every node on
/// the store shares one ring: a visitor token or a channel secret protected on one node is read on any other. Keys
/// that earlier versions wrote to the data folder (<c>{DataDirectory}/keys</c>) are still read, so secrets and
/// tokens protected with them stay readable; new keys go to the store only.
/// </summary>
internal sealed class StoreKeyRepository(EntityFrameworkCoreXmlRepository<Store.CrmDbContext> store, FileSystemXmlRepository? legacy) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        var stored = store.GetAllElements();
        if (legacy is null)
            return stored;
        // A key is in both only if an admin copied it over; Data Protection takes the first of a duplicate id.
        return [.. stored, .. legacy.GetAllElements()];
    }

    public void StoreElement(XElement element, string friendlyName) => store.StoreElement(element, friendlyName);
}
