using Crm.Service.Grains.Storage;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Support;

/// <summary>
/// The whole service in-process (host, silo, store) on a real SQLite file in its own folder, with its own ports.
/// Each test builds its own, so tests are isolated; two apps on one folder one after the other model a restart.
/// </summary>
internal sealed class CrmApp : WebApplicationFactory<Program>
{
    public const string AdminKey = "test-admin-key-0123456789abcdef";
    public const string ChannelSecret = "channel-secret-0123456789";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) } };

    private readonly Dictionary<string, string?> _settings;
    private readonly FakeTimeProvider? _clock;
    private readonly Action<IServiceCollection>? _services;

    /// <param name="clock">When given, the grains' clock (Orleans keeps real time) and <see cref="IActivationProbe"/> is installed.</param>
    /// <param name="services">Replaces or adds services after the app's own (a counting store, a fake clock).</param>
    public CrmApp(string dataDirectory, IDictionary<string, string?>? settings = null, FakeTimeProvider? clock = null, Action<IServiceCollection>? services = null)
    {
        _services = services;
        DataDirectory = dataDirectory;
        _clock = clock;
        _settings = new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = dataDirectory,
            ["Cluster:SiloPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Cluster:GatewayPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Cluster:ClusterId"] = "test-" + Guid.NewGuid().ToString("N")[..8],
            ["Auth:BootstrapAdminKey"] = AdminKey,
            ["Outbox:PollInterval"] = "00:00:00.200",
            ["Outbox:FirstRetryDelay"] = "00:00:00.100",
            ["Outbox:MaxRetryDelay"] = "00:00:00.500",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Channels:Api:AllowPrivateNetworkWebhooks"] = "true",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            _settings[key] = value;
    }

    public string DataDirectory { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in _settings)
            builder.UseSetting(key, value);
        if (_clock is not null)
            builder.ConfigureTestServices(services => services.AddFakeGrainClock(_clock)
                .AddKeyedTransient<IGrainExtension, ActivationProbe>(typeof(IActivationProbe)));
        if (FaultyStore)
            builder.ConfigureTestServices(services => services.AddFaultInjectingStore());
        if (_services is not null)
            builder.ConfigureTestServices(_services);
    }

    /// <summary>Set before first use: the store is wrapped in a <see cref="FaultInjectingStore"/> (see <see cref="Store"/>).</summary>
    public bool FaultyStore { get; init; }

    internal FaultInjectingStore Store => Services.GetRequiredService<FaultInjectingStore>();

    public HttpClient Admin()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", AdminKey);
        return client;
    }

    public async Task<HttpClient> AgentAsync(string name = "agent-1")
    {
        using var admin = Admin();
        var response = await admin.PostAsJsonAsync("/api/v1/admin/api-keys", new { name, role = "agent" });
        response.EnsureSuccessStatusCode();
        var key = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString();
        var client = CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    public async Task CreateApiChannelAsync(string id = "bridge", string? webhookUrl = null)
    {
        using var admin = Admin();
        var response = await admin.PutAsJsonAsync($"/api/v1/admin/channels/{id}", new { kind = "api", name = "Test bridge", secret = ChannelSecret, webhookUrl });
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Posts a message on the API channel and returns the ticket and customer it landed on.</summary>
    public async Task<(long Number, Guid Customer)> ReceiveAsync(string id, string sender, string subject = "Subject ", string text = "text ")
    {
        var response = await PostMessageAsync(new { messageId = id, sender = new { id = sender, name = sender }, subject = subject + id, text = text + id });
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (body.GetProperty("ticketNumber").GetInt64(), body.GetProperty("customerId").GetGuid());
    }

    /// <summary>The console account id of a signed-up person.</summary>
    public async Task<string> UserIdAsync(string email)
    {
        using var scope = Services.CreateScope();
        return (await scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Microsoft.AspNetCore.Identity.IdentityUser>>().FindByEmailAsync(email))!.Id;
    }

    public async Task<HttpResponseMessage> PostMessageAsync(object message, string channel = "bridge", string secret = ChannelSecret)
    {
        using var client = CreateClient();
        return await client.SendAsync(Signing.SignedPost($"/api/v1/channels/{channel}/messages", secret, JsonSerializer.Serialize(message, Json)));
    }

    public async Task<T> QueryAsync<T>(Func<CrmDbContext, Task<T>> query)
    {
        var contexts = Services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
        await using var db = await contexts.CreateDbContextAsync();
        return await query(db);
    }

    /// <summary>The channel's own words for a reply's last failure, as kept for admins (agents see a generic error).</summary>
    /// The message shows its final state before the outbox row gets its error (two commits): wait for the row to settle.
    public async Task<string?> OutboxErrorAsync(Guid messageId) =>
        (await Eventually.WaitForAsync(
            () => QueryAsync(db => db.Outbox.Where(o => o.MessageId == messageId).Select(o => new { o.State, o.LastError }).SingleAsync()),
            o => o.State != Crm.Service.Grains.Records.OutboxState.Pending, what: $"the outbox row of {messageId} settled")).LastError;

    public IGrainFactory Grains => Services.GetRequiredService<IGrainFactory>();
}
