using Xunit.Abstractions;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Crm.Connectors.Telegram;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Telegram;

/// <summary>
/// Every object of Corpora/telegram (teloxide's and aiogram's serialization tests), sent as Telegram would send it,
/// through the webhook and through getUpdates: each becomes a stored message or is kept raw with a reason, and none
/// stops the reader or gets a non-200 answer.
/// </summary>
public sealed class TelegramCorpusTests(ITestOutputHelper output)
{
    private static readonly string[] MessageKinds = ["message", "edited_message", "channel_post", "edited_channel_post", "business_message", "edited_business_message"];

    /// <summary>(file, object) for every JSON file of the corpus but the manifests.</summary>
    private static List<(string File, JsonNode Node)> Corpus()
    {
        var root = Path.Combine(AppContext.BaseDirectory, "Corpora", "telegram");
        return [.. Directory.EnumerateFiles(root, "*.json", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != "manifest.json")
            .Order(StringComparer.Ordinal)
            .Select(f => (Path.GetRelativePath(root, f), JsonNode.Parse(File.ReadAllBytes(f))!))];
    }

    /// <summary>How Telegram would deliver the object: an update as it is (its update_id is Telegram's to assign), a
    /// message inside an update, anything else as an update of a kind we do not know.</summary>
    private static JsonObject Envelope(JsonNode node)
    {
        var copy = node.DeepClone();
        if (copy is JsonObject update && update.ContainsKey("update_id"))
        {
            update.Remove("update_id");
            return update;
        }
        if (copy is JsonObject message && message.ContainsKey("message_id") && message.ContainsKey("chat"))
            return new JsonObject { ["message"] = message };
        return new JsonObject { ["corpus_object"] = copy };
    }

    /// <summary>The external id a stored message of the update would have (an edit's starts with it), or null.</summary>
    private static string? ExpectedExternalId(JsonObject update)
    {
        foreach (var kind in MessageKinds)
            if (update[kind] is JsonObject message && message["chat"]?["id"] is JsonValue chat && message["message_id"] is JsonValue id)
                return $"{chat.ToJsonString()}:{id.ToJsonString()}";
        return null;
    }

    private async Task AssertEachAccountedForAsync(TelegramRig rig, string account, List<(string File, int UpdateId, string? ExternalId)> sent)
    {
        var stored = await rig.InboundAsync(account);
        var kept = await rig.KeptAsync(account);
        var storedIds = stored.Select(m => m.ExternalId!).ToList();
        var missing = sent.Where(s => !kept.Any(k => k.Uid == s.UpdateId)
                                      && (s.ExternalId is null || !storedIds.Any(id => id == s.ExternalId || id.StartsWith(s.ExternalId + ":edit:", StringComparison.Ordinal))))
            .Select(s => s.File).ToList();
        output.WriteLine($"{account}: {stored.Count} stored, {kept.Count} kept");
        foreach (var reason in kept.GroupBy(k => System.Text.RegularExpressions.Regex.Replace(k.Reason, @"-?\d{3,}", "N")).OrderByDescending(g => g.Count()))
            output.WriteLine($"  {reason.Count(),4} × {reason.Key}");
        Assert.True(missing.Count == 0, $"neither stored nor kept on {account}: {string.Join(", ", missing)}");
        Assert.All(kept, k => Assert.False(string.IsNullOrWhiteSpace(k.Reason)));
        Assert.All(kept, k => Assert.Contains(k.Folder, new[] { TelegramIngest.QuarantineFolder, TelegramIngest.IgnoredFolder, TelegramIngest.AnsweredFolder }));
        // Both outcomes happen: the corpus holds messages and much that is not.
        Assert.True(stored.Count >= 10, $"only {stored.Count} stored");
        Assert.True(kept.Count >= 100, $"only {kept.Count} kept");
    }

    [Fact]
    public async Task Every_corpus_object_through_the_webhook_is_stored_or_kept_with_a_reason()
    {
        await using var rig = await TelegramRig.StartAsync();
        rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("hook", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret, groups: "conversation");
        var sent = new List<(string, int, string?)>();
        using var client = rig.App.CreateClient();
        var updateId = 5000;
        foreach (var (file, node) in Corpus())
        {
            var update = Envelope(node);
            var expected = ExpectedExternalId(update);
            update["update_id"] = ++updateId;
            var request = new HttpRequestMessage(HttpMethod.Post, "/connectors/telegram/hook/webhook") { Content = new StringContent(update.ToJsonString(), Encoding.UTF8, "application/json") };
            request.Headers.Add(TelegramWebhookEndpoints.SecretHeader, TelegramRig.Secret);
            var response = await client.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{file}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            sent.Add((file, updateId, expected));
        }
        Assert.True(sent.Count >= 200);
        await AssertEachAccountedForAsync(rig, "hook", sent);
    }

    [Fact]
    public async Task Every_corpus_object_through_getUpdates_is_stored_or_kept_with_a_reason_and_the_reader_gets_to_the_end()
    {
        await using var rig = await TelegramRig.StartAsync();
        var bot = rig.Api.AddBot(TelegramRig.TokenB, 222222, "poll_bot");
        var sent = new List<(string, int, string?)>();
        foreach (var (file, node) in Corpus())
        {
            var update = Envelope(node);
            var expected = ExpectedExternalId(update);
            sent.Add((file, bot.Enqueue(update), expected));
        }
        await rig.ConfigureBotAsync("poll", TelegramRig.TokenB, groups: "ignore");
        var last = sent[^1].Item2;
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Confirmed), c => c == last, timeout: TimeSpan.FromSeconds(60), what: "the reader past the last corpus update");
        await AssertEachAccountedForAsync(rig, "poll", sent);
    }
}
