using System.Diagnostics;
using System.Net.Http.Json;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Security;
using Microsoft.Data.Sqlite;
using MimeKit;

namespace Crm.Service.Benchmarks;

/// <summary>
/// Email import: N mails appended to a real Dovecot mailbox (Postfix+Dovecot started from the test fixture's scripts,
/// as root), then the service (its own process) reads them over IMAP until all are stored; the figure is messages/s
/// from the channel's creation to the last stored message, next to MimeKit's parse rate of the same bytes in this run.
/// </summary>
internal static class EmailImport
{
    public static async Task RunAsync(string workDirectory, int count)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "MailServer", "mailsys.sh");
        var mailDirectory = Path.Combine("/tmp", "mailbench-" + Guid.NewGuid().ToString("N")[..8]);
        var (smtp, imap) = (ServiceUnderTest.FreePort(), ServiceUnderTest.FreePort());
        await RunScriptAsync(script, "start", mailDirectory, smtp.ToString(System.Globalization.CultureInfo.InvariantCulture), imap.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            Console.WriteLine($"Email import benchmark: {count} mails, {Environment.ProcessorCount} cores");
            var raws = Enumerable.Range(1, count).Select(Mail).ToList();

            // MimeKit's parse rate of the same bytes (after a warm-up), the ceiling of what the channel could do.
            foreach (var raw in raws.Take(2000))
                MimeMessage.Load(new MemoryStream(raw));
            var parse = Stopwatch.StartNew();
            foreach (var raw in raws)
                MimeMessage.Load(new MemoryStream(raw));
            var parseRate = raws.Count / parse.Elapsed.TotalSeconds;

            using (var client = new ImapClient())
            {
                await client.ConnectAsync("127.0.0.1", imap, SecureSocketOptions.None);
                await client.AuthenticateAsync("support@example.test", "support-pw");
                foreach (var chunk in raws.Chunk(500))
                    await client.Inbox.AppendAsync(chunk.Select(r => (IAppendRequest)new AppendRequest(MimeMessage.Load(new MemoryStream(r)))).ToList());
                await client.DisconnectAsync(true);
            }

            // The same mailbox imported twice, each time by a fresh service on an empty data folder: first with the
            // batch handed off one mail after the other (the first version), then concurrently by lane (the default).
            var sequential = await ImportAsync(Path.Combine(workDirectory, "email-sequential"), imap, smtp, count, parallelism: 1);
            var concurrent = await ImportAsync(Path.Combine(workDirectory, "email-concurrent"), imap, smtp, count, parallelism: null);
            Console.WriteLine();
            Console.WriteLine($"| figure ({count:N0} mails, same run, each a new customer and ticket) | value |");
            Console.WriteLine("|---|---|");
            Console.WriteLine($"| import, batch handed off one by one (HandOffParallelism=1, the first version) | {sequential:N0} messages/s |");
            Console.WriteLine($"| import, batch handed off concurrently by lane (default) | {concurrent:N0} messages/s |");
            Console.WriteLine($"| concurrent / one by one | {concurrent / sequential:0.00}x |");
            Console.WriteLine($"| MimeKit parse of the same mails, one thread | {parseRate:N0} messages/s |");
        }
        finally
        {
            await RunScriptAsync(script, "stop", mailDirectory);
            Directory.Delete(mailDirectory, recursive: true);
        }
    }

    /// <summary>Starts the service on an empty folder, creates the channel, and times until all mails are stored.</summary>
    private static async Task<double> ImportAsync(string data, int imap, int smtp, int count, int? parallelism)
    {
        await using var service = await ServiceUnderTest.StartAsync(data, parallelism is { } p ? new Dictionary<string, string> { ["Channels__Email__HandOffParallelism"] = p.ToString(System.Globalization.CultureInfo.InvariantCulture) } : null);
        using var http = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        http.DefaultRequestHeaders.Add("X-Api-Key", ServiceUnderTest.AdminKey);
        var clock = Stopwatch.StartNew();
        (await http.PutAsJsonAsync("/api/v1/admin/channels/support", new
        {
            kind = "email",
            name = "Support",
            settings = new
            {
                address = "support@example.test",
                imap = new { host = "127.0.0.1", port = imap, security = "none", user = "support@example.test", password = "support-pw" },
                smtp = new { host = "127.0.0.1", port = smtp, security = "none" },
            },
        })).EnsureSuccessStatusCode();
        var connection = $"Data Source={Path.Combine(data, "crm.db")};Mode=ReadOnly";
        long stored = 0;
        while (stored < count)
        {
            await Task.Delay(100);
            await using var db = new SqliteConnection(connection);
            await db.OpenAsync();
            await using var command = db.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM Messages WHERE ChannelAccountId = 'support'";
            stored = (long)(await command.ExecuteScalarAsync())!;
            if (clock.Elapsed > TimeSpan.FromMinutes(30))
                throw new TimeoutException($"only {stored} of {count} mails stored after 30 minutes");
        }
        var rate = count / clock.Elapsed.TotalSeconds;
        Console.WriteLine($"  {(parallelism is 1 ? "one by one" : "concurrent")}: {rate:N0} messages/s");
        return rate;
    }

    /// <summary>A typical support mail: a new sender each time, text and HTML, about 3 KB.</summary>
    private static byte[] Mail(int i)
    {
        var message = new MimeMessage { MessageId = $"bench-{i}@customer.example.test", Subject = $"Order {i} has not arrived", Date = DateTimeOffset.UnixEpoch.AddDays(20000) };
        message.From.Add(new MailboxAddress($"Customer {i}", $"customer{i}@example.test"));
        message.To.Add(new MailboxAddress("Support", "support@example.test"));
        var text = string.Join("\n", Enumerable.Range(0, 20).Select(l => $"Line {l} of mail {i}: my order has still not arrived, please check the tracking."));
        message.Body = new BodyBuilder { TextBody = text, HtmlBody = "<p>" + text.Replace("\n", "<br>", StringComparison.Ordinal) + "</p>" }.ToMessageBody();
        using var buffer = new MemoryStream();
        message.WriteTo(buffer);
        return buffer.ToArray();
    }

    private static async Task RunScriptAsync(string script, params string[] arguments)
    {
        var log = Path.GetTempFileName();
        var start = new ProcessStartInfo("bash", ["-c", "bash \"$0\" \"$@\" >\"$MAILSYS_LOG\" 2>&1 </dev/null", script, .. arguments]) { UseShellExecute = false };
        start.Environment["MAILSYS_LOG"] = log;
        using var process = Process.Start(start)!;
        await process.WaitForExitAsync();
        var output = await File.ReadAllTextAsync(log);
        File.Delete(log);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"mailsys.sh {arguments[0]} failed: {output}");
    }
}
