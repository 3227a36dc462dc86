using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Telegram;

/// <summary>A fake Bot API and the service pointed at it; the app can be restarted on the same data folder.</summary>
internal sealed class TelegramRig : IAsyncDisposable
{
    public const string TokenA = "111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    public const string TokenB = "222222:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    public const string Secret = "webhook-secret_0123456789";
    public const long UserId = 424242;

    private readonly TempDirectory _data = new();
    private readonly TempDirectory _secondNode = new();
    private readonly Action<IServiceCollection>? _services;
    private readonly IDictionary<string, string?>? _settings;

    public FakeBotApi Api { get; private set; } = null!;
    public CrmApp App { get; private set; } = null!;

    private TelegramRig(Action<IServiceCollection>? services, IDictionary<string, string?>? settings)
    {
        _services = services;
        _settings = settings;
    }

    /// <param name="settings">Configuration on top of the rig's (and kept across restarts).</param>
    public static async Task<TelegramRig> StartAsync(Action<IServiceCollection>? services = null, IDictionary<string, string?>? settings = null)
    {
        var rig = new TelegramRig(services, settings);
        rig.Api = await FakeBotApi.StartAsync();
        rig.App = rig.NewApp(services);
        return rig;
    }

    /// <param name="extra">Settings for this app only (a second node's own search folder).</param>
    public CrmApp NewApp(Action<IServiceCollection>? services, IDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Channels:Telegram:ApiBaseUrl"] = Api.BaseUrl,
            ["Channels:Telegram:PollTimeout"] = "00:00:01",
            ["Channels:Telegram:FirstReconnectDelay"] = "00:00:00.100",
            ["Channels:Telegram:MaxReconnectDelay"] = "00:00:00.500",
            ["Channels:Telegram:MaxInlineRetryAfter"] = "00:00:01",
        };
        foreach (var (key, value) in (_settings ?? new Dictionary<string, string?>()).Concat(extra ?? new Dictionary<string, string?>()))
            settings[key] = value;
        return new(_data.Path, settings, services: services);
    }

    /// <summary>Stops the app (as a crash or deploy would, between any two awaits of the reader) and starts another on the same data.</summary>
    public async Task RestartAsync(Action<IServiceCollection>? services = null)
    {
        await App.DisposeAsync();
        App = NewApp(services);
        _ = App.Services;
    }

    /// <summary>A second node on the same store and Bot API (its own Lucene folder: an index has one writer).</summary>
    public CrmApp SecondNode(Action<IServiceCollection>? services = null) =>
        NewApp(services, new Dictionary<string, string?>
        {
            ["Search:LuceneDirectory"] = Path.Combine(_secondNode.Path, "search"),
            ["Search:RecordsLuceneDirectory"] = Path.Combine(_secondNode.Path, "search-records"),
        });

    public async Task ConfigureBotAsync(string id, string token, string mode = "polling", string? secretToken = null, string? publicBaseUrl = null, string? welcomeText = null, string groups = "ignore")
    {
        using var admin = App.Admin();
        var response = await admin.PutAsJsonAsync($"/api/v1/admin/channels/{id}", new
        {
            kind = "telegram",
            name = id,
            settings = new { token, mode, secretToken, publicBaseUrl, welcomeText, groups },
        });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>A private-chat message as Telegram sends it, without the update_id.</summary>
    public static JsonObject PrivateMessage(int messageId, string? text, long userId = UserId, string kind = "message", long? editDate = null, JsonObject? extra = null)
    {
        var message = new JsonObject
        {
            ["message_id"] = messageId,
            ["from"] = new JsonObject { ["id"] = userId, ["is_bot"] = false, ["first_name"] = "Ada", ["last_name"] = "Lovelace", ["username"] = "ada" },
            ["chat"] = new JsonObject { ["id"] = userId, ["type"] = "private", ["first_name"] = "Ada" },
            ["date"] = 1_700_000_000 + messageId,
        };
        if (text is not null)
            message["text"] = text;
        if (editDate is not null)
            message["edit_date"] = editDate;
        foreach (var (key, value) in extra?.ToList() ?? [])
        {
            extra!.Remove(key);
            message[key] = value;
        }
        return new JsonObject { [kind] = message };
    }

    public Task<List<MessageRecord>> InboundAsync(string account) =>
        App.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == account && m.Direction == MessageDirection.Inbound).OrderBy(m => m.CreatedAt).ToListAsync());

    public Task<List<QuarantinedMailRecord>> KeptAsync(string account) =>
        App.QueryAsync(db => db.QuarantinedMail.AsNoTracking().Where(q => q.ChannelAccountId == account).ToListAsync());

    public Task<List<MessageRecord>> InboundCountReachedAsync(string account, int count) =>
        Eventually.WaitForAsync(() => InboundAsync(account), m => m.Count >= count, what: $"{count} inbound messages on {account}");

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        await Api.DisposeAsync();
        _data.Dispose();
        _secondNode.Dispose();
    }
}
