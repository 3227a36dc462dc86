using System.Runtime.CompilerServices;

namespace Crm.Service.Tests.Support;

/// <summary>Settings for the whole test process, applied as the test assembly loads, before any host is built.</summary>
internal static class TestProcessSettings
{
    /// <summary>
    /// Hosts do not watch their appsettings files for changes. Each watch is an inotify instance, and the suite builds
    /// hundreds of hosts (app nodes, fake Telegram and Elasticsearch servers) on a box whose default limit is 128 per user:
    /// past it, building a host fails ("The configured user limit (128) on the number of inotify instances has been
    /// reached"), which failed 17 tests of one CI run. The tests never change those files while a host runs.
    /// </summary>
    [ModuleInitializer]
    internal static void Apply() => Environment.SetEnvironmentVariable("DOTNET_hostBuilder__reloadConfigOnChange", "false");
}
