namespace Crm.Service.Tests.Support;

/// <summary>xUnit makes a class instance per test, so each test gets its own app, data folder and API channel "bridge".</summary>
public abstract class AppTest : IAsyncLifetime
{
    private readonly TempDirectory _data = new();

    internal CrmApp App { get; private set; } = null!;

    internal virtual IDictionary<string, string?>? Settings => null;

    internal virtual string? WebhookUrl => null;

    public virtual async Task InitializeAsync()
    {
        App = new CrmApp(_data.Path, Settings);
        await App.CreateApiChannelAsync(webhookUrl: WebhookUrl);
    }

    public virtual async Task DisposeAsync()
    {
        await App.DisposeAsync();
        _data.Dispose();
    }
}
