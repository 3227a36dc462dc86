using System.Net.Http.Json;
using Crm.Service.Tests.Support;
using MailKit;
using Microsoft.Data.Sqlite;
using MimeKit;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Email;

/// <summary>
/// The service process is SIGKILLed while its reader is in the middle of a mailbox of many batches. The invariant is
/// the one the reader promises: a mail is marked \Seen on the server only after it is durably stored, so at the kill
/// every \Seen mail is in the store; and after a restart every mail is stored exactly once.
/// </summary>
public sealed class EmailCrashTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Mails = 60;
    private readonly TempDirectory _data = new("crm-email-crash");
    private MailServer _mail = null!;

    public async Task InitializeAsync() => _mail = await MailServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private static readonly Dictionary<string, string> Settings = new()
    {
        ["Channels__Email__PollInterval"] = "00:00:01",
        ["Channels__Email__BatchSize"] = "4",
        ["Channels__Email__FirstReconnectDelay"] = "00:00:00.200",
        ["Channels__Email__MaxReconnectDelay"] = "00:00:01",
    };

    [Fact]
    public async Task A_sigkill_in_the_middle_of_a_mailbox_loses_and_doubles_nothing_and_marks_nothing_unstored()
    {
        for (var i = 0; i < Mails; i++)
        {
            var message = new MimeMessage { MessageId = $"crash-{i}@customer.test", Subject = $"Question {i}" };
            message.From.Add(new MailboxAddress($"Customer {i % 5}", $"c{i % 5}@customer.test"));
            message.To.Add(new MailboxAddress("Support", MailServer.Support));
            message.Body = new TextPart("plain") { Text = $"Mail number {i} of the crash test." };
            using var raw = new MemoryStream();
            await message.WriteToAsync(raw);
            await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, raw.ToArray());
        }

        await using (var service = await ServiceProcess.StartAsync(_data.Path, Settings))
        {
            using var admin = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
            admin.DefaultRequestHeaders.Add("X-Api-Key", CrmApp.AdminKey);
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
            // Killed once some batches are in, while later ones are still being read.
            await Eventually.WaitForAsync(() => StoredAsync(), stored => stored.Count >= 8, TimeSpan.FromSeconds(90), "the first batches stored");
            await service.KillAsync();
        }

        var storedAtKill = await StoredAsync();
        var seenAtKill = (await _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword))
            .Where(m => m.Flags.HasFlag(MessageFlags.Seen)).Select(m => m.Message.MessageId ?? "").ToList();
        output.WriteLine($"at the kill: {storedAtKill.Count} stored, {seenAtKill.Count} marked seen of {Mails}");
        Assert.All(seenAtKill, id => Assert.True(storedAtKill.ContainsKey(id), $"{id} is marked seen on the server but was not stored"));
        Assert.All(storedAtKill, pair => Assert.Equal(1, pair.Value));

        await using (var restarted = await ServiceProcess.StartAsync(_data.Path, Settings))
        {
            var stored = await Eventually.WaitForAsync(() => StoredAsync(), s => s.Count == Mails, TimeSpan.FromSeconds(120), $"all {Mails} mails stored after the restart");
            Assert.All(Enumerable.Range(0, Mails), i => Assert.True(stored.TryGetValue($"crash-{i}@customer.test", out var copies) && copies == 1,
                $"crash-{i}@customer.test is stored {(stored.TryGetValue($"crash-{i}@customer.test", out var n) ? n : 0)} times"));
            var inbox = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword),
                m => m.All(x => x.Flags.HasFlag(MessageFlags.Seen)), TimeSpan.FromSeconds(60), "every mail marked seen");
            Assert.Equal(Mails, inbox.Count);
        }
        // One ticket per mail: each is a new subject from a customer, none a reply.
        Assert.Equal(Mails, (await StoredAsync(tickets: true)).Count);
    }

    /// <summary>Stored inbound mails of the account by Message-ID, with how many rows each has (or the distinct
    /// tickets they made); read from the database file, as the process may be dead.</summary>
    private async Task<Dictionary<string, int>> StoredAsync(bool tickets = false)
    {
        var path = Path.Combine(_data.Path, "crm.db");
        if (!File.Exists(path))
            return [];
        await using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = tickets
            ? "SELECT DISTINCT TicketNumber FROM Messages WHERE ChannelAccountId = 'support' AND Direction = 0"
            : "SELECT ExternalId FROM Messages WHERE ChannelAccountId = 'support' AND Direction = 0";
        var rows = new Dictionary<string, int>();
        try
        {
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var key = tickets ? reader.GetInt64(0).ToString(System.Globalization.CultureInfo.InvariantCulture) : reader.GetString(0).Split('|')[0];
                rows[key] = rows.GetValueOrDefault(key) + 1;
            }
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == 1)
        {
            // The schema is not there yet (the first start is still migrating).
        }
        return rows;
    }
}
