namespace Crm.Service.Tests.Support;

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory(string prefix = "crm-test") =>
        Path = Directory.CreateTempSubdirectory(prefix + "-").FullName;

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A host that is still shutting down may hold a file; the OS temp cleaner gets it later.
        }
    }
}
