namespace Crm.Service.Grains.Storage;

/// <summary>
/// The marker every value made by <see cref="ISecretProtector.Protect"/> starts with. A stored secret without it comes
/// from a database older than encryption at rest: it is read as plain text, and encrypted by the sweep at the next start (LegacySecretSweep) or the row's next write.
/// </summary>
public static class ProtectedSecrets
{
    public const string Marker = "dp1:";

    public static bool IsProtected(string stored) => stored.StartsWith(Marker, StringComparison.Ordinal);
}
