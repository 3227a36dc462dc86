using Crm.Service.Grains.Storage;
using Microsoft.AspNetCore.DataProtection;

namespace Crm.Service.Infrastructure.Channels;

/// <summary>
/// Secrets at rest, encrypted with ASP.NET Core Data Protection under keys kept in the data folder ("keys"): a copy of
/// the database alone does not reveal them. Protected values carry <see cref="ProtectedSecrets.Marker"/>; a value
/// without it is a plain secret from an older database and is returned as it is.
/// </summary>
internal sealed class DataProtectionSecretProtector(IDataProtectionProvider provider) : ISecretProtector
{
    // The purpose string isolates these payloads from any other use of the same key ring (cookies, antiforgery).
    private readonly IDataProtector _protector = provider.CreateProtector("Crm.Service.Secrets.v1");

    public string Protect(string plaintext) => ProtectedSecrets.Marker + _protector.Protect(plaintext);

    public string Unprotect(string protectedValue) =>
        ProtectedSecrets.IsProtected(protectedValue) ? _protector.Unprotect(protectedValue[ProtectedSecrets.Marker.Length..]) : protectedValue;
}
