using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.Api.Http;
using Microsoft.Data.Sqlite;

namespace Crm.Service.Benchmarks;

/// <summary>
/// The console's queue and ticket pages with a million tickets in the embedded store: a few thousand real tickets are
/// made through the API channel (customers, conversations, messages, tags, the console's projections), then copied in
/// SQL to the requested count with spread-out times, statuses, priorities and assignees. A signed-in agent then reads
/// each page over HTTP (server time plus loopback; the HTML is rendered in full), next to the bare indexed SQL query of
/// the same page on the same file in the same run. Also reports the service's resident memory.
/// </summary>
internal static partial class QueuePages
{
    private const string Secret = "benchmark-channel-secret-0123";
    private const string Agent = "bench@example.com";
    private const string Password = "benchmark passphrase 0123";
    private const int PageSize = 50;

    public static async Task RunAsync(string work, int tickets, int seeds, int requests)
    {
        Console.WriteLine($"Console pages benchmark: {tickets:N0} tickets ({seeds:N0} made through the API, the rest copied in SQL), {requests} requests a page, {Environment.ProcessorCount} cores");
        var data = Path.Combine(work, "service");
        Directory.CreateDirectory(data);
        await ServiceUnderTest.RunCommandAsync(data, ["--create-admin", Agent], new Dictionary<string, string> { ["CRM_ADMIN_PASSWORD"] = Password });

        var clock = Stopwatch.StartNew();
        await using (var seeding = await ServiceUnderTest.StartAsync(data))
            await SeedAsync(seeding, seeds);
        Console.WriteLine($"Seeded {seeds:N0} tickets through the API in {clock.Elapsed.TotalSeconds:N1} s");

        clock.Restart();
        var database = Path.Combine(data, "crm.db");
        var copies = Multiply(database, tickets);
        Console.WriteLine($"Copied to {copies.Tickets:N0} tickets and {copies.Messages:N0} messages in SQL in {clock.Elapsed.TotalSeconds:N1} s");

        await using var service = await ServiceUnderTest.StartAsync(data);
        using var console = await SignInAsync(service);
        using var sql = new SqliteConnection($"Data Source={database};Mode=ReadOnly");
        sql.Open();
        var seedTicket = copies.SeedTicketWithMessages;

        var pages = new (string Name, string Url, string Sql)[]
        {
            ("Open, newest update first", "/Queues/Open",
                "SELECT * FROM Tickets WHERE Status IN (0, 1) ORDER BY UpdatedAt DESC, Number DESC LIMIT 51"),
            ("Open, second page", "", // filled from the first page's next link
                "SELECT * FROM Tickets WHERE Status IN (0, 1) AND UpdatedAt <= @at AND (UpdatedAt < @at OR Number < @n) ORDER BY UpdatedAt DESC, Number DESC LIMIT 51"),
            ("Mine", "/Queues/Mine",
                $"SELECT * FROM Tickets WHERE Assignee = '{Agent}' AND Status IN (0, 1, 2, 3) ORDER BY UpdatedAt DESC, Number DESC LIMIT 51"),
            ("Unassigned", "/Queues/Unassigned",
                "SELECT * FROM Tickets WHERE Assignee IS NULL AND Status IN (0, 1) ORDER BY UpdatedAt DESC, Number DESC LIMIT 51"),
            ("Open, by priority", "/Queues/Open?sort=Priority",
                "SELECT * FROM Tickets WHERE Status IN (0, 1) ORDER BY Priority DESC, UpdatedAt DESC, Number DESC LIMIT 51"),
            ("Open, by creation", "/Queues/Open?sort=Created",
                "SELECT * FROM Tickets WHERE Status IN (0, 1) ORDER BY CreatedAt DESC, Number DESC LIMIT 51"),
            ("Open, tag vip", "/Queues/Open?tag=vip",
                "SELECT t.* FROM TicketTags x JOIN Tickets t ON t.Number = x.TicketNumber WHERE x.Tag = 'vip' AND t.Status IN (0, 1) ORDER BY x.UpdatedAt DESC, x.TicketNumber DESC LIMIT 51"),
            ("Closed", "/Queues/Closed",
                "SELECT * FROM Tickets WHERE Status IN (4, 5) ORDER BY UpdatedAt DESC, Number DESC LIMIT 51"),
            ("Ticket page", $"/Tickets/{seedTicket}",
                $"SELECT * FROM Tickets WHERE Number = {seedTicket}; SELECT * FROM Messages WHERE TicketNumber = {seedTicket} ORDER BY CreatedAt DESC, Id DESC LIMIT 51"),
        };
        var firstPage = await console.GetStringAsync(pages[0].Url);
        var next = NextLink().Match(firstPage);
        pages[1].Url = next.Success ? WebUtility.HtmlDecode(next.Groups[1].Value) : throw new InvalidOperationException("The first Open page has no next-page link; seed more open tickets.");
        var (at, number) = LastRowKey(sql, pages[0].Sql);

        Console.WriteLine();
        Console.WriteLine($"| page ({tickets:N0} tickets) | rows (page / SQL) | page p50 / p95 / p99 (ms) | bare SQL p50 / p99 (ms) | page ÷ SQL (p50) |");
        Console.WriteLine("|---|---|---|---|---|");
        var worstP95 = 0.0;
        foreach (var (name, url, query) in pages)
        {
            var rows = 0;
            for (var i = 0; i < Math.Max(5, requests / 10); i++)
                rows = await ReadPageAsync(console, url);
            var page = new double[requests];
            for (var i = 0; i < requests; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await ReadPageAsync(console, url);
                page[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
            var bare = new double[requests];
            var sqlRows = 0;
            for (var i = 0; i < requests; i++)
            {
                var started = Stopwatch.GetTimestamp();
                sqlRows = RunSql(sql, query, at, number);
                bare[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
            Array.Sort(page);
            Array.Sort(bare);
            worstP95 = Math.Max(worstP95, Percentile(page, 0.95));
            Console.WriteLine($"| {name} | {rows} / {sqlRows} | {Percentile(page, 0.5):N1} / {Percentile(page, 0.95):N1} / {Percentile(page, 0.99):N1} | {Percentile(bare, 0.5):N2} / {Percentile(bare, 0.99):N2} | {Percentile(page, 0.5) / Math.Max(Percentile(bare, 0.5), 0.001):N1}× |");
        }
        foreach (var (name, _, query) in pages)
            Console.WriteLine($"  plan of the bare SQL, {name}: {Plan(sql, query)}");
        Console.WriteLine($"| service resident memory after the runs (MiB) | {service.ResidentMiB():N0} |");
        Console.WriteLine($"| target: every page p95 under 50 ms | {(worstP95 < 50 ? "met" : "NOT met")} (worst {worstP95:N1} ms) |");
    }

    private static async Task SeedAsync(ServiceUnderTest service, int seeds)
    {
        using var http = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        http.DefaultRequestHeaders.Add("X-Api-Key", ServiceUnderTest.AdminKey);
        (await http.PutAsJsonAsync("/api/v1/admin/channels/bench", new { kind = "api", name = "benchmark", secret = Secret })).EnsureSuccessStatusCode();
        var numbers = new long[seeds];
        var made = 0;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref made) - 1) < seeds)
            {
                var body = JsonSerializer.SerializeToUtf8Bytes(new
                {
                    messageId = $"seed-{i}",
                    sender = new { id = $"seed-sender-{i}", name = $"Customer {i}" },
                    text = $"Seed message {i}: the invoice for order {i} shows the wrong address and I need a corrected copy for our accounts.",
                });
                var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                using var message = new HttpRequestMessage(HttpMethod.Post, "/api/v1/channels/bench/messages") { Content = new ByteArrayContent(body) };
                message.Content.Headers.ContentType = new("application/json");
                message.Headers.Add(RequestSignature.TimestampHeader, timestamp.ToString(CultureInfo.InvariantCulture));
                message.Headers.Add(RequestSignature.SignatureHeader, RequestSignature.Compute(Secret, timestamp, body));
                using var response = await http.SendAsync(message);
                response.EnsureSuccessStatusCode();
                numbers[i] = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
            }
        })));
        // A tag on every tenth ticket, through the API so the projection is the service's own.
        foreach (var number in numbers.Where((_, i) => i % 10 == 0))
            (await http.PatchAsJsonAsync($"/api/v1/tickets/{number}", new { tags = new[] { "vip" } })).EnsureSuccessStatusCode();
    }

    /// <summary>Copies the seeded tickets (with their tags, channels and messages) until there are <paramref name="target"/>;
    /// each copy gets new numbers and ids, older times, and its own status, priority and assignee, so queues have the
    /// mix a busy helpdesk has: most tickets closed, a fiftieth of the open ones assigned to the benchmark agent.</summary>
    private static (long Tickets, long Messages, long SeedTicketWithMessages) Multiply(string database, int target)
    {
        using var db = new SqliteConnection($"Data Source={database}");
        db.Open();
        Exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;");
        var seeds = Scalar(db, "SELECT COUNT(*) FROM Tickets");
        var stride = Scalar(db, "SELECT MAX(Number) FROM Tickets") + 1;
        var seedTicket = Scalar(db, "SELECT TicketNumber FROM Messages GROUP BY TicketNumber ORDER BY COUNT(*) DESC LIMIT 1");
        var copies = (target - seeds + seeds - 1) / seeds;
        var ticketColumns = Columns(db, "Tickets");
        var messageColumns = Columns(db, "Messages");
        for (var k = 1; k <= copies; k++)
        {
            using var transaction = db.BeginTransaction();
            var offset = k * stride;
            // Times are stored as ticks or milliseconds; either way a copy is older by k minutes' worth of units.
            var older = $"(@k * 600000000)";
            Exec(db, $"INSERT INTO Tickets ({string.Join(", ", ticketColumns)}) SELECT {string.Join(", ", ticketColumns.Select(c => c switch
            {
                "Number" => "Number + @offset",
                "CreatedAt" or "UpdatedAt" => $"{c} - {older}",
                "Status" => "CASE WHEN (Number + @k) % 10 < 7 THEN 5 WHEN (Number + @k) % 10 = 7 THEN 2 WHEN (Number + @k) % 10 = 8 THEN 1 ELSE 0 END",
                "Priority" => "(Number * 7 + @k) % 4",
                // Not a function of (Number + k) % 10 like the status: an earlier formula gave the agent only closed tickets.
                "Assignee" => $"CASE ((Number * 3 + @k * 7) / 10) % 50 WHEN 0 THEN '{Agent}' WHEN 1 THEN NULL WHEN 2 THEN NULL ELSE 'agent' || ((Number + @k) % 40) || '@example.com' END",
                "ClosedAt" or "ResolvedAt" => $"CASE WHEN {c} IS NULL THEN NULL ELSE {c} - {older} END",
                _ => c,
            }))} FROM Tickets WHERE Number < @stride", transaction, ("@offset", offset), ("@k", k), ("@stride", stride));
            Exec(db, $"INSERT INTO TicketTags (TicketNumber, Tag, UpdatedAt) SELECT TicketNumber + @offset, Tag, UpdatedAt - {older} FROM TicketTags WHERE TicketNumber < @stride", transaction, ("@offset", offset), ("@k", k), ("@stride", stride));
            Exec(db, $"INSERT INTO TicketChannels (TicketNumber, ChannelAccountId, UpdatedAt) SELECT TicketNumber + @offset, ChannelAccountId, UpdatedAt - {older} FROM TicketChannels WHERE TicketNumber < @stride", transaction, ("@offset", offset), ("@k", k), ("@stride", stride));
            Exec(db, $"INSERT INTO Messages ({string.Join(", ", messageColumns)}) SELECT {string.Join(", ", messageColumns.Select(c => c switch
            {
                "Id" => "upper(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-8' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))",
                "TicketNumber" => "TicketNumber + @offset",
                "CreatedAt" => $"CreatedAt - {older}",
                "ExternalId" or "IdempotencyKey" => $"CASE WHEN {c} IS NULL THEN NULL ELSE {c} || '#' || @k END",
                _ => c,
            }))} FROM Messages WHERE TicketNumber < @stride", transaction, ("@offset", offset), ("@k", k), ("@stride", stride));
            transaction.Commit();
            if (k % 50 == 0 || k == copies)
                Console.Error.WriteLine($"  … {(k + 1) * seeds:N0} tickets");
        }
        // The last copy's surplus over the target is removed, so the figures name an exact count.
        if (Scalar(db, "SELECT COUNT(*) FROM Tickets") > target)
        {
            var cutoff = Scalar(db, $"SELECT Number FROM Tickets ORDER BY Number LIMIT 1 OFFSET {target}");
            foreach (var (table, key) in new[] { ("Tickets", "Number"), ("TicketTags", "TicketNumber"), ("TicketChannels", "TicketNumber"), ("Messages", "TicketNumber") })
                Exec(db, $"DELETE FROM {table} WHERE {key} >= {cutoff}");
        }
        Exec(db, "ANALYZE");
        return (Scalar(db, "SELECT COUNT(*) FROM Tickets"), Scalar(db, "SELECT COUNT(*) FROM Messages"), seedTicket);
    }

    private static async Task<HttpClient> SignInAsync(ServiceUnderTest service)
    {
        var console = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false }) { BaseAddress = new Uri(service.BaseUrl) };
        var form = await console.GetStringAsync("/Account/Login");
        var token = Token().Match(form);
        using var response = await console.PostAsync("/Account/Login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = Agent,
            ["Password"] = Password,
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token.Groups[1].Value),
        }));
        if (response.StatusCode != HttpStatusCode.Redirect)
            throw new InvalidOperationException($"Signing in as {Agent} answered {(int)response.StatusCode}, not a redirect.");
        return console;
    }

    private static async Task<int> ReadPageAsync(HttpClient console, string url)
    {
        using var response = await console.GetAsync(url);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new InvalidOperationException($"{url} answered {(int)response.StatusCode}.");
        var html = await response.Content.ReadAsStringAsync();
        // A queue row links its ticket twice (number and subject).
        return TicketRow().Count(html) / 2;
    }

    private static (long At, long Number) LastRowKey(SqliteConnection sql, string firstPage)
    {
        using var command = sql.CreateCommand();
        command.CommandText = firstPage.Replace("LIMIT 51", "LIMIT 1 OFFSET 49", StringComparison.Ordinal).Replace("SELECT *", "SELECT UpdatedAt, Number", StringComparison.Ordinal);
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetInt64(0), reader.GetInt64(1)) : (0, 0);
    }

    /// <summary>Runs the statements; returns the rows of the first (the page's rows, capped at the page size).</summary>
    private static int RunSql(SqliteConnection sql, string query, long at, long number)
    {
        var first = -1;
        using var command = sql.CreateCommand();
        command.CommandText = query;
        if (query.Contains("@at", StringComparison.Ordinal))
        {
            command.Parameters.AddWithValue("@at", at);
            command.Parameters.AddWithValue("@n", number);
        }
        using var reader = command.ExecuteReader();
        do
        {
            var values = new object[reader.FieldCount];
            var rows = 0;
            while (reader.Read())
            {
                reader.GetValues(values);
                rows++;
            }
            if (first < 0)
                first = Math.Min(rows, PageSize);
        }
        while (reader.NextResult());
        return first;
    }

    private static string Plan(SqliteConnection sql, string query)
    {
        using var command = sql.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN " + query.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
        command.Parameters.AddWithValue("@at", 0L);
        command.Parameters.AddWithValue("@n", 0L);
        using var reader = command.ExecuteReader();
        var steps = new List<string>();
        while (reader.Read())
            steps.Add(reader.GetString(3));
        return string.Join("; ", steps);
    }

    private static List<string> Columns(SqliteConnection db, string table)
    {
        using var command = db.CreateCommand();
        command.CommandText = $"SELECT name FROM pragma_table_info('{table}')";
        using var reader = command.ExecuteReader();
        var columns = new List<string>();
        while (reader.Read())
            columns.Add(reader.GetString(0));
        return columns;
    }

    private static long Scalar(SqliteConnection db, string query)
    {
        using var command = db.CreateCommand();
        command.CommandText = query;
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static void Exec(SqliteConnection db, string query, SqliteTransaction? transaction = null, params (string Name, long Value)[] parameters)
    {
        using var command = db.CreateCommand();
        command.CommandText = query;
        command.Transaction = transaction;
        command.CommandTimeout = 0;
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value);
        command.ExecuteNonQuery();
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex Token();

    [GeneratedRegex("href=\"([^\"]*cursor=[^\"]+)\" rel=\"next\"")]
    private static partial Regex NextLink();

    [GeneratedRegex("href=\"/Tickets/\\d+\"")]
    private static partial Regex TicketRow();
}
