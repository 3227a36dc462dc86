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
    private const int Workers = 16;
    private const int SendersPerWorker = 7;

    private sealed record Acknowledgement(Guid MessageId, long TicketNumber);

    private static string Body(string externalId)
    {
        var (worker, i) = (externalId[1..externalId.IndexOf('-', StringComparison.Ordinal)], int.Parse(externalId[(externalId.IndexOf('-', StringComparison.Ordinal) + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        return JsonSerializer.Serialize(new { messageId = externalId, sender = new { id = $"sender-{worker}-{i % SendersPerWorker}" }, text = $"burst message {externalId}" });
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, string externalId) =>
        await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, Body(externalId)));

    [Fact]
    public async Task Every_message_that_got_a_202_before_a_sigkill_is_stored_exactly_once_after_restart()
    {
        using var data = new TempDirectory("crm-crash");
        var acknowledged = new ConcurrentDictionary<string, Acknowledgement>();
        // Sent but never answered (in flight at the kill): each may or may not be stored.
        var unanswered = new ConcurrentDictionary<string, bool>();
        // Answered with anything but 202: the client was told it failed.
        var refused = new ConcurrentDictionary<string, HttpStatusCode>();
        await using (var service = await ServiceProcess.StartAsync(data.Path))
        {
            using var admin = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
            admin.DefaultRequestHeaders.Add("X-Api-Key", CrmApp.AdminKey);
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "crash", secret = CrmApp.ChannelSecret })).EnsureSuccessStatusCode();

            using var stop = new CancellationTokenSource();
            var workers = Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
            {
                using var client = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var id = $"w{worker}-{i}";
                    try
                    {
                        var response = await SendAsync(client, id);
                        if (response.StatusCode == HttpStatusCode.Accepted)
                        {
                            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
                            acknowledged[id] = new Acknowledgement(body.GetProperty("messageId").GetGuid(), body.GetProperty("ticketNumber").GetInt64());
                        }
                        else
                        {
                            refused[id] = response.StatusCode;
                        }
                    }
                    catch (HttpRequestException)
                    {
                        // The process is being killed: a request without an answer was not acknowledged.
                        unanswered[id] = true;
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
        output.WriteLine($"crash test: {acknowledged.Count} acknowledged, {unanswered.Count} unanswered, {refused.Count} refused before SIGKILL");

        await using var restarted = await ServiceProcess.StartAsync(data.Path);
        var afterCrash = await ReadStoreAsync(data.Path);
        output.WriteLine($"crash test: {afterCrash.Messages.Count} messages stored after restart");

        // Nothing acknowledged is lost, nothing is stored twice, nothing is stored that was never sent.
        var storedIds = afterCrash.Messages.GroupBy(m => m.ExternalId).ToDictionary(g => g.Key, g => g.Select(m => m.Id).ToList());
        foreach (var (externalId, ack) in acknowledged)
        {
            Assert.True(storedIds.TryGetValue(externalId, out var rows), $"acknowledged message {externalId} is missing after the crash");
            Assert.Equal([ack.MessageId], rows);
        }
        Assert.All(storedIds, pair => Assert.True(pair.Value.Count == 1, $"{pair.Key} is stored {pair.Value.Count} times"));
        var storedButNotAcknowledged = storedIds.Keys.Except(acknowledged.Keys).ToList();
        Assert.All(storedButNotAcknowledged, id => Assert.True(unanswered.ContainsKey(id) || refused.ContainsKey(id), $"{id} is stored but was never sent"));
        // Each worker has at most one request in flight, so at most that many unacknowledged messages can have been stored.
        Assert.True(storedButNotAcknowledged.Count <= Workers + refused.Count, $"{storedButNotAcknowledged.Count} unacknowledged messages stored");
        // A message stays with the ticket it was acknowledged with.
        var storedTicket = afterCrash.Messages.ToDictionary(m => m.ExternalId, m => m.TicketNumber);
        Assert.All(acknowledged, pair => Assert.Equal(pair.Value.TicketNumber, storedTicket[pair.Key]));

        using var client = new HttpClient { BaseAddress = new Uri(restarted.BaseUrl) };
        // Redelivering everything acknowledged creates nothing new and answers with the first message and ticket.
        foreach (var (externalId, ack) in acknowledged)
        {
            var response = await SendAsync(client, externalId);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.True(body.GetProperty("duplicate").GetBoolean(), $"redelivered {externalId} was not recognised");
            Assert.Equal(ack.MessageId, body.GetProperty("messageId").GetGuid());
            Assert.Equal(ack.TicketNumber, body.GetProperty("ticketNumber").GetInt64());
        }
        Assert.Equal(afterCrash.Messages.Count, (await ReadStoreAsync(data.Path)).Messages.Count);

        // The bridge retries what it never got an answer for; that repairs whatever the kill left half done.
        foreach (var externalId in unanswered.Keys.Concat(refused.Keys))
            Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(client, externalId)).StatusCode);
        // New customers after the restart get numbers that no row held before it.
        var referencedBefore = afterCrash.Conversations.Select(c => c.TicketNumber).Concat(afterCrash.Messages.Select(m => m.TicketNumber)).ToHashSet();
        for (var i = 0; i < 20; i++)
        {
            var response = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret,
                JsonSerializer.Serialize(new { messageId = $"after-{i}", sender = new { id = $"new-sender-{i}" }, text = "after the crash" })));
            var number = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
            Assert.DoesNotContain(number, referencedBefore);
        }

        var repaired = await ReadStoreAsync(data.Path);
        Assert.Equal(acknowledged.Count + unanswered.Count + refused.Count + 20, repaired.Messages.Count);
        // One ticket per conversation (one sender, no ticket closed), each stored, for the conversation's customer;
        // every message on its conversation's ticket.
        var tickets = repaired.Tickets.ToDictionary(t => t.Number, t => t.CustomerId);
        Assert.Equal(repaired.Conversations.Count, repaired.Conversations.Select(c => c.TicketNumber).Distinct().Count());
        Assert.All(repaired.Conversations, c =>
        {
            Assert.True(tickets.TryGetValue(c.TicketNumber, out var customer), $"conversation {c.Id} points at ticket #{c.TicketNumber}, which is not stored");
            Assert.Equal(c.CustomerId, customer);
        });
        var ticketOfConversation = repaired.Conversations.ToDictionary(c => c.Id, c => c.TicketNumber);
        Assert.All(repaired.Messages, m => Assert.Equal(ticketOfConversation[m.ConversationId], m.TicketNumber));
        var senders = acknowledged.Keys.Concat(unanswered.Keys).Concat(refused.Keys).Select(id => JsonDocument.Parse(Body(id)).RootElement.GetProperty("sender").GetProperty("id").GetString()).Distinct().Count();
        Assert.Equal(senders + 20, repaired.Conversations.Count);
    }

    private sealed record StoredMessage(string ExternalId, Guid Id, Guid ConversationId, long TicketNumber);

    private sealed record StoredConversation(Guid Id, Guid CustomerId, long TicketNumber);

    private sealed record StoredTicket(long Number, Guid CustomerId);

    private sealed record StoreContents(List<StoredMessage> Messages, List<StoredConversation> Conversations, List<StoredTicket> Tickets);

    private static async Task<StoreContents> ReadStoreAsync(string dataDirectory)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(dataDirectory, "crm.db")};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        return new StoreContents(
            await ReadAsync(connection, "SELECT ExternalId, Id, ConversationId, TicketNumber FROM Messages WHERE ChannelAccountId = 'bridge'",
                r => new StoredMessage(r.GetString(0), r.GetGuid(1), r.GetGuid(2), r.GetInt64(3))),
            await ReadAsync(connection, "SELECT Id, CustomerId, TicketNumber FROM Conversations WHERE ChannelAccountId = 'bridge'",
                r => new StoredConversation(r.GetGuid(0), r.GetGuid(1), r.GetInt64(2))),
            await ReadAsync(connection, "SELECT Number, CustomerId FROM Tickets", r => new StoredTicket(r.GetInt64(0), r.GetGuid(1))));
    }

    private static async Task<List<T>> ReadAsync<T>(SqliteConnection connection, string sql, Func<SqliteDataReader, T> read)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        var rows = new List<T>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            rows.Add(read(reader));
        return rows;
    }
}
