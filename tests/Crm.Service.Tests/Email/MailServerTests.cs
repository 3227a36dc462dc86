using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Email;

/// <summary>A test class against a real Postfix/Dovecot pair of its own (<see cref="MailServer"/>) and a data folder for
/// its apps, both made before each test and removed after it.</summary>
public abstract class MailServerTests : IAsyncLifetime
{
#pragma warning disable SA1306, IDE1006 // The names every email test class used before this base class existed.
    private protected readonly TempDirectory _data = new();
    private protected MailServer _mail = null!;
#pragma warning restore SA1306, IDE1006

    public virtual async Task InitializeAsync() => _mail = await MailServer.StartAsync();

    public virtual async Task DisposeAsync()
    {
        await _mail.DisposeAsync();
        _data.Dispose();
    }
}
