using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Changes;

/// <summary>
/// A crash at each point between a commit and a consumer's cursor loses no change and, with a consumer that keeps a
/// persisted high-water mark, applies none twice. In-process tests abandon the dispatcher at the exact point (it keeps
/// nothing in memory that a restart needs); the SIGKILL test proves change rows commit atomically with their writes.
/// </summary>
public sealed class ChangeFeedCrashTests(ITestOutputHelper output) : IDisposable
{
    private const string Consumer = "journal";
    private readonly TempDirectory _data = new("crm-feed-crash");

    private string JournalPath => Path.Combine(_data.Path, "journal.txt");

    public void Dispose() => _data.Dispose();

    [Fact]
    public async Task A_crash_between_the_commit_and_the_consumer_loses_no_change()
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var crashing = new JournalConsumer(Consumer, JournalPath)
        {
            BeforeApply = async cancellationToken =>
            {
                reached.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            },
        };
        List<long> committed;
        await using (var rig = await FeedRig.StartAsync(_data.Path, [crashing]))
        {
            await rig.CommitTicketsAsync(20);
            await reached.Task.WaitAsync(TimeSpan.FromSeconds(30));
            committed = await rig.SequencesAsync();
            // The crash: the process is gone while the consumer holds committed changes it has not applied.
        }
        Assert.Empty(JournalConsumer.Applied(JournalPath));
        Assert.Equal(0, await PersistedCursorAsync());

        var restarted = new JournalConsumer(Consumer, JournalPath);
        await using (var rig = await FeedRig.StartAsync(_data.Path, [restarted]))
        {
            await Eventually.WaitForAsync(() => rig.CursorAsync(Consumer), cursor => cursor == committed[^1], what: "the cursor to reach the last change");
        }
        Assert.Equal(committed, JournalConsumer.Applied(JournalPath));
    }

    [Fact]
    public async Task A_crash_between_handling_and_the_cursor_write_applies_no_change_twice()
    {
        var applied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var crashing = new JournalConsumer(Consumer, JournalPath)
        {
            AfterApply = async cancellationToken =>
            {
                applied.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            },
        };
        var settings = new Dictionary<string, string?> { ["ChangeFeed:BatchSize"] = "8" };
        List<long> committed;
        await using (var rig = await FeedRig.StartAsync(_data.Path, [crashing], settings))
        {
            await rig.CommitTicketsAsync(20);
            await applied.Task.WaitAsync(TimeSpan.FromSeconds(30));
            committed = await rig.SequencesAsync();
            // The crash: the consumer's effects are durable, its cursor is not.
        }
        var appliedBeforeCrash = JournalConsumer.Applied(JournalPath);
        Assert.NotEmpty(appliedBeforeCrash);
        Assert.True(await PersistedCursorAsync() < appliedBeforeCrash[^1], "the crash should leave applied changes beyond the cursor");

        var restarted = new JournalConsumer(Consumer, JournalPath);
        await using (var rig = await FeedRig.StartAsync(_data.Path, [restarted], settings))
        {
            await rig.CommitTicketsAsync(5);
            committed = await rig.SequencesAsync();
            await Eventually.WaitForAsync(() => rig.CursorAsync(Consumer), cursor => cursor == committed[^1], what: "the cursor to reach the last change");
        }
        // Handed again (at least once), skipped by the high-water mark (applied once).
        Assert.Equal(appliedBeforeCrash, restarted.Skipped);
        Assert.Equal(committed, JournalConsumer.Applied(JournalPath));
    }

    [Fact]
    public async Task A_sigkill_during_a_burst_loses_no_change_and_the_journal_consumer_applies_none_twice()
    {
        var journal = Path.Combine(_data.Path, "changes.journal");
        var settings = new Dictionary<string, string> { ["ChangeFeed__JournalFile"] = journal, ["ChangeFeed__BatchSize"] = "8" };
        var acknowledged = new ConcurrentDictionary<string, Guid>();
        await using (var service = await ServiceProcess.StartAsync(_data.Path, settings))
        {
            using var admin = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
            admin.DefaultRequestHeaders.Add("X-Api-Key", CrmApp.AdminKey);
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "crash", secret = CrmApp.ChannelSecret })).EnsureSuccessStatusCode();

            using var stop = new CancellationTokenSource();
            var workers = Enumerable.Range(0, 8).Select(worker => Task.Run(async () =>
            {
                using var client = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var id = $"w{worker}-{i}";
                    var json = JsonSerializer.Serialize(new { messageId = id, sender = new { id = $"feed-{worker}-{i % 5}" }, text = $"feed {id}" });
                    try
                    {
                        var response = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/messages", CrmApp.ChannelSecret, json));
                        if (response.StatusCode == HttpStatusCode.Accepted)
                            acknowledged[id] = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("messageId").GetGuid();
                    }
                    catch (HttpRequestException)
                    {
                        if (stop.IsCancellationRequested)
                            return;
                    }
                }
            })).ToList();

            await Eventually.WaitForAsync(() => Task.FromResult(acknowledged.Count), count => count >= 150, TimeSpan.FromSeconds(60), "150 acknowledged messages");
            await Eventually.WaitForAsync(() => Task.FromResult(JournalSequences(journal).Count), count => count > 0, TimeSpan.FromSeconds(60), "the journal to start");
            await service.KillAsync();
            await stop.CancelAsync();
            await Task.WhenAll(workers);
        }

        // Opening the file after the kill recovers the WAL exactly as a restart would.
        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(_data.Path, "crm.db")};Pooling=False"))
        {
            await connection.OpenAsync();
            await AssertEveryWriteHasItsChangeAsync(connection, acknowledged.Values);
            var committed = await ListAsync(connection, "SELECT CAST(Sequence AS TEXT) FROM Changes ORDER BY Sequence");
            var cursor = await PersistedCursorAsync("journal");
            var applied = JournalSequences(journal);
            output.WriteLine($"at the kill: {committed.Count} changes committed, journal applied up to {applied.LastOrDefault()}, cursor at {cursor}");
        }

        // The restarted service hands the journal what it missed (and what it applied but had no cursor for) exactly once.
        await using (await ServiceProcess.StartAsync(_data.Path, settings))
        {
            await Eventually.WaitForAsync(async () => (Journal: JournalSequences(journal).LastOrDefault(), Last: await LastSequenceAsync()),
                state => state.Journal == state.Last, TimeSpan.FromSeconds(60), "the journal to catch up");
        }
        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(_data.Path, "crm.db")};Pooling=False"))
        {
            await connection.OpenAsync();
            var committed = (await ListAsync(connection, "SELECT CAST(Sequence AS TEXT) FROM Changes ORDER BY Sequence")).Select(s => long.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(committed, JournalSequences(journal));
        }
    }

    private static async Task AssertEveryWriteHasItsChangeAsync(SqliteConnection connection, ICollection<Guid> acknowledged)
    {
        var created = await ListAsync(connection, "SELECT EntityId FROM Changes WHERE Entity = 'message' AND Kind = 'created'");
        var messages = await ListAsync(connection, "SELECT Id FROM Messages");
        foreach (var messageId in acknowledged)
            Assert.Single(created, messageId.ToString("D"));
        Assert.Equal(messages.Select(m => Guid.Parse(m).ToString("D")).Order(), created.Order());
        var tickets = await ListAsync(connection, "SELECT CAST(Number AS TEXT) FROM Tickets");
        Assert.Equal(tickets.Order(), (await ListAsync(connection, "SELECT EntityId FROM Changes WHERE Entity = 'ticket' AND Kind = 'created'")).Order());
    }

    /// <summary>The sequences of the journal's complete lines (a line without its newline was cut short by the kill).</summary>
    private static List<long> JournalSequences(string path)
    {
        if (!File.Exists(path))
            return [];
        using var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var lines = new StreamReader(reader).ReadToEnd().Split('\n');
        return [.. lines[..^1].Select(l => long.Parse(l[..l.IndexOf(' ', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture))];
    }

    private async Task<long> LastSequenceAsync()
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_data.Path, "crm.db")};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(MAX(Sequence), 0) FROM Changes";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<long> PersistedCursorAsync(string consumer = Consumer)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_data.Path, "crm.db")};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE((SELECT Sequence FROM ChangeCursors WHERE Consumer = $consumer), 0)";
        command.Parameters.AddWithValue("$consumer", consumer);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<List<string>> ListAsync(SqliteConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        var values = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            values.Add(reader.GetString(0));
        return values;
    }
}
