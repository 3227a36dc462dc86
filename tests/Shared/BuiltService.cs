namespace Crm.Service.Testing;

/// <summary>Where the built service is: src/Crm.Service/bin/{Configuration}/{framework} of this repository, in the
/// configuration and framework of the calling program (compiled into the tests and the benchmark).</summary>
internal static class BuiltService
{
    public static string HostDirectory()
    {
        var own = new DirectoryInfo(AppContext.BaseDirectory);
        var root = own;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Crm.Service.sln")))
            root = root.Parent;
        if (root is null)
            throw new InvalidOperationException($"Cannot find Crm.Service.sln above {AppContext.BaseDirectory}; run from the repository.");
        var directory = Path.Combine(root.FullName, "src", "Crm.Service", "bin", own.Parent!.Name, own.Name);
        return File.Exists(Path.Combine(directory, "Crm.Service.dll"))
            ? directory
            : throw new InvalidOperationException($"The service is not built at {directory}; build the solution first.");
    }
}
