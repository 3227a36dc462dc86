using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Support;

/// <summary>Debian's chromium (installed by .ci/run), headless, never a downloaded browser.</summary>
internal static class Chromium
{
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright)
    {
        // Playwright's 5 s default for Expect is too short on a loaded 2-core CI box (a widget's first
        // SignalR round trip took longer there); a longer wait changes no verdict, only patience.
        Assertions.SetDefaultExpectTimeout(20_000);
        return playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            // No sandbox: CI runs as root; the rest keeps chromium from reaching the network on its own.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    /// <summary>Waits until the page has navigated to <paramref name="url"/> and shows <paramref name="selector"/>.
    /// Not WaitForURL: when the URL already matches it waits for the load state, and with WaitUntil Commit too it
    /// waited for the load event, which a loaded CI box once never reported although the page had loaded
    /// ("NetworkIdle" fired, 60 s timeout, twice). Expect's URL check only polls the address, and an element of the new
    /// page proves it is there.</summary>
    public static async Task ArrivedAtAsync(this IPage page, Regex url, string selector)
    {
        await Assertions.Expect(page).ToHaveURLAsync(url, new() { Timeout = 60_000 });
        await page.Locator(selector).First.WaitForAsync();
    }

    /// <summary>Fills the console's sign-in form the page is showing (it was sent there by the sign-in redirect) as
    /// <paramref name="email"/> with the test password, and waits until it arrives at <paramref name="url"/> showing
    /// <paramref name="selector"/>.</summary>
    public static async Task SignInAsync(this IPage page, string email, Regex url, string selector)
    {
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(ConsoleBrowser.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.ArrivedAtAsync(url, selector);
    }
}
