using Microsoft.Playwright;

namespace Crm.Service.Tests.Support;

/// <summary>Debian's chromium (installed by .ci/run), headless, never a downloaded browser.</summary>
internal static class Chromium
{
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) => playwright.Chromium.LaunchAsync(new()
    {
        ExecutablePath = "/usr/bin/chromium",
        Headless = true,
        // No sandbox: CI runs as root; the rest keeps chromium from reaching the network on its own.
        Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
}
