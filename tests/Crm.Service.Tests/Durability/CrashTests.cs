using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Durability;

public sealed class CrashTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Every_message_that_got_a_202_before_a_sigkill_is_stored_exactly_once_after_restart()
    {
        using var data = new TempDirectory("crm-crash");
        var acknowledged = new ConcurrentDictionary<string, Guid>();
        await using (var service = await ServiceProcess.StartAsync(data.Path))
        {
            using var admin = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
            admin.DefaultRequestHeaders.Add("X-Api-Key", CrmApp.AdminKey);
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "crash", secret = CrmApp.ChannelSecret })).EnsureSuccessStatusCode();

            using var stop = new CancellationTokenSource();
            var workers = Enumerable.Range(0, 16).Select(worker => Task.Run(async () =>
            {
                using var client = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var id = $"w{worker}-{i}";
                    var json = JsonSerializer.Serialize(new { messageId = id, sender = new { id = $"sender-{worker}-{i % 7}" }, text = $"burst message {id}" });
                    try
                    {
                        var response = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, json));
                        if (response.StatusCode == HttpStatusCode.Accepted)
                            acknowledged[id] = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("messageId").GetGuid();
                    }
                    catch (HttpRequestException)
                    {
                        // The process is being killed: a request without an answer was not acknowledged.
                        if (stop.IsCancellationRequested)
                            return;
                    }
                }
            })).ToList();

            // Kill in the middle of the burst.
            await Eventually.WaitForAsync(() => Task.FromResult(acknowledged.Count), count => count >= 300, TimeSpan.FromSeconds(60), "300 acknowledged messages");
            await service.KillAsync();
            await stop.CancelAsync();
            await Task.WhenAll(workers);
        }

        Assert.True(acknowledged.Count >= 300);
        output.WriteLine($"crash test: {acknowledged.Count} messages acknowledged before SIGKILL");
        await using var restarted = await ServiceProcess.StartAsync(data.Path);
        var stored = await StoredExternalIdsAsync(data.Path);
        output.WriteLine($"crash test: {stored.Count} distinct messages stored after restart, {stored.Values.Sum(v => v.Count)} rows");
        foreach (var (externalId, messageId) in acknowledged)
        {
            Assert.True(stored.TryGetValue(externalId, out var rows), $"acknowledged message {externalId} is missing after the crash");
            Assert.Equal([messageId], rows);
        }

        // Redelivering everything acknowledged creates nothing new.
        using var client = new HttpClient { BaseAddress = new Uri(restarted.BaseUrl) };
        foreach (var externalId in acknowledged.Keys.Take(50))
        {
            var worker = externalId[1..externalId.IndexOf('-', StringComparison.Ordinal)];
            var i = int.Parse(externalId[(externalId.IndexOf('-', StringComparison.Ordinal) + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            var json = JsonSerializer.Serialize(new { messageId = externalId, sender = new { id = $"sender-{worker}-{i % 7}" }, text = $"burst message {externalId}" });
            var response = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, json));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.True((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("duplicate").GetBoolean());
        }
        Assert.Equal(stored.Values.Sum(v => v.Count), (await StoredExternalIdsAsync(data.Path)).Values.Sum(v => v.Count));
    }

    private static async Task<Dictionary<string, List<Guid>>> StoredExternalIdsAsync(string dataDirectory)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(dataDirectory, "crm.db")};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT ExternalId, Id FROM Messages WHERE ChannelAccountId = 'bridge'";
        var result = new Dictionary<string, List<Guid>>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var externalId = reader.GetString(0);
            if (!result.TryGetValue(externalId, out var ids))
                result[externalId] = ids = [];
            ids.Add(reader.GetGuid(1));
        }
        return result;
    }
}
