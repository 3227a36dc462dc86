using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Crm.Connectors.Api.Http;
using Crm.Service.Benchmarks;

// Ingest benchmark: N signed messages through the API channel of the real service (its own process, real HTTP,
// durable group commit), next to the raw SQLite insert rate at the same durability, measured in the same run.
// Usage: dotnet run -c Release --project tests/Crm.Service.Benchmarks -- [--messages N] [--senders S] [--concurrency C] [--warmup W] [--rounds R]
// Email import (as root, needs postfix and dovecot installed): … -- --email [--messages N]

// Knowledge-base search (quality on the FAQ corpus, speed at scale): … -- --kb [--articles N] [--queries Q]
if (args.Contains("--kb"))
{
    var kbWork = Directory.CreateTempSubdirectory("crm-bench-kb-");
    try
    {
        await KbSearch.RunAsync(kbWork.FullName, Arg("--articles", 100_000), Arg("--queries", 5_000));
    }
    finally
    {
        kbWork.Delete(recursive: true);
    }
    return 0;
}

// Routing/SLA arithmetic in-process (issue 20): … -- --routing [--agents N] [--tickets T] [--sla S] [--rounds R]
if (args.Contains("--routing"))
{
    Routing.Run(Arg("--agents", 1_000), Arg("--tickets", 100_000), Arg("--sla", 100_000), Arg("--rounds", 3));
    return 0;
}

// Console queue and ticket pages over a million tickets: … -- --queues [--tickets N] [--seeds S] [--requests R]
if (args.Contains("--queues"))
{
    var queueWork = Directory.CreateTempSubdirectory("crm-bench-queues-");
    try
    {
        await QueuePages.RunAsync(queueWork.FullName, Arg("--tickets", 1_000_000), Arg("--seeds", 2_000), Arg("--requests", 200));
    }
    finally
    {
        queueWork.Delete(recursive: true);
    }
    return 0;
}

if (args.Contains("--email"))
{
    var mailWork = Directory.CreateTempSubdirectory("crm-bench-");
    try
    {
        await EmailImport.RunAsync(mailWork.FullName, Arg("--messages", 10_000));
    }
    finally
    {
        mailWork.Delete(recursive: true);
    }
    return 0;
}

var messages = Arg("--messages", 20_000);
var senders = Arg("--senders", 1_000);
var concurrency = Arg("--concurrency", 64);
// Tiered JIT needs tens of thousands of calls before the hot paths run optimized code; measure after that.
var warmupCount = Arg("--warmup", 15_000);
var roundCount = Arg("--rounds", 3);
const string Secret = "benchmark-channel-secret-0123";

var work = Directory.CreateTempSubdirectory("crm-bench-");
try
{
    Console.WriteLine($"Crm.Service ingest benchmark: {messages} messages from {senders} senders, {concurrency} concurrent requests, {Environment.ProcessorCount} cores");

    Console.Write("Raw SQLite baseline (WAL, synchronous=FULL)… ");
    var (singleCommits, batchedRows) = SqliteBaseline.Measure(work.FullName, TimeSpan.FromSeconds(3));
    Console.WriteLine("done");

    await using var service = await ServiceUnderTest.StartAsync(Path.Combine(work.FullName, "service"));
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = new Uri(service.BaseUrl) };
    http.DefaultRequestHeaders.Add("X-Api-Key", ServiceUnderTest.AdminKey);
    (await http.PutAsJsonAsync("/api/v1/admin/channels/bench", new { kind = "api", name = "benchmark", secret = Secret })).EnsureSuccessStatusCode();
    http.DefaultRequestHeaders.Remove("X-Api-Key");

    // Bodies and signatures are made before the clock starts, so the figures are the service's, not the client's.
    Console.WriteLine($"Warm-up: {warmupCount} messages…");
    await DriveAsync(Prepare("warm", warmupCount, senders));

    // Two mixes: ongoing conversations (many messages per sender) and first contacts (every sender new, so every
    // message also creates a customer, a conversation and a ticket). Each is measured in several rounds; the median
    // round is reported, since one round on a shared 2-core machine varies by about ±10%.
    var results = new List<(string Mix, double Rate, double P50, double P99, int Failures)>();
    foreach (var (mix, mixSenders) in new[] { ("ongoing conversations", senders), ("first contacts", messages) })
    {
        var rounds = new List<(double Rate, double[] Latencies, int Failures)>();
        for (var round = 1; round <= roundCount; round++)
        {
            var batch = Prepare($"{(mixSenders == messages ? "first" : "ongoing")}{round}", messages, mixSenders);
            var (elapsed, latencies, failures) = await DriveAsync(batch);
            Array.Sort(latencies);
            rounds.Add((batch.Length / elapsed.TotalSeconds, latencies, failures));
            Console.WriteLine($"  {mix}, round {round}: {batch.Length / elapsed.TotalSeconds:N0} messages/s, p50 {Percentile(latencies, 0.5):N1} ms, p99 {Percentile(latencies, 0.99):N1} ms");
        }
        var median = rounds.OrderBy(r => r.Rate).ElementAt(rounds.Count / 2);
        results.Add((mix, median.Rate, Percentile(median.Latencies, 0.50), Percentile(median.Latencies, 0.99), rounds.Sum(r => r.Failures)));
    }

    Console.WriteLine();
    Console.WriteLine($"| figure ({messages:N0} messages a round, median of {roundCount} rounds, {concurrency} concurrent requests) | value |");
    Console.WriteLine("|---|---|");
    foreach (var r in results)
    {
        Console.WriteLine($"| API ingest, {r.Mix} (messages/s, durably stored) | {r.Rate:N0} |");
        Console.WriteLine($"| latency p50 / p99, {r.Mix} (ms) | {r.P50:N1} / {r.P99:N1} |");
        Console.WriteLine($"| ingest ÷ raw single-row commits, {r.Mix} | {r.Rate / singleCommits:N2}× |");
        Console.WriteLine($"| raw commits of 100 ÷ ingest, {r.Mix} | {batchedRows / r.Rate:N2}× |");
    }
    Console.WriteLine($"| raw SQLite, one commit per row (rows/s) | {singleCommits:N0} |");
    Console.WriteLine($"| raw SQLite, commits of 100 rows (rows/s) | {batchedRows:N0} |");
    Console.WriteLine($"| failed requests | {results.Sum(r => r.Failures)} |");
    Console.WriteLine($"| target 5,000 messages/s (ongoing conversations) | {(results[0].Rate >= 5000 ? "met" : "NOT met")} |");
    return results.Sum(r => r.Failures) == 0 ? 0 : 1;

    (HttpContentPair Request, string Id)[] Prepare(string prefix, int count, int senderCount) =>
        Enumerable.Range(0, count).Select(i =>
        {
            var id = $"{prefix}-{i}";
            var body = JsonSerializer.SerializeToUtf8Bytes(new
            {
                messageId = id,
                sender = new { id = $"{prefix}-sender-{i % senderCount}", name = "Bench Customer" },
                text = $"Benchmark message {i}: my parcel has not arrived and the tracking page shows no update since Monday.",
            });
            var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            return (new HttpContentPair(body, timestamp, RequestSignature.Compute(Secret, timestamp, body)), id);
        }).ToArray();

    async Task<(TimeSpan Elapsed, double[] LatenciesMs, int Failures)> DriveAsync((HttpContentPair Request, string Id)[] batch)
    {
        var latencies = new double[batch.Length];
        var next = -1;
        var failures = 0;
        var clock = Stopwatch.StartNew();
        var progress = Task.Run(async () =>
        {
            while (Volatile.Read(ref next) < batch.Length - 1)
            {
                await Task.Delay(1000);
                Console.Error.WriteLine($"  … {Math.Min(Volatile.Read(ref next) + 1, batch.Length)}/{batch.Length}");
            }
        });
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < batch.Length)
            {
                var (request, _) = batch[i];
                using var message = new HttpRequestMessage(HttpMethod.Post, "/api/v1/channels/bench/messages") { Content = new ByteArrayContent(request.Body) };
                message.Content.Headers.ContentType = new("application/json");
                message.Headers.Add(RequestSignature.TimestampHeader, request.Timestamp.ToString(CultureInfo.InvariantCulture));
                message.Headers.Add(RequestSignature.SignatureHeader, request.Signature);
                var started = Stopwatch.GetTimestamp();
                using var response = await http.SendAsync(message);
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if ((int)response.StatusCode != 202)
                {
                    if (Interlocked.Increment(ref failures) <= 5)
                        Console.Error.WriteLine($"  request {i} answered {(int)response.StatusCode}: {Encoding.UTF8.GetString(await response.Content.ReadAsByteArrayAsync())}");
                }
            }
        })));
        clock.Stop();
        await progress;
        return (clock.Elapsed, latencies, failures);
    }
}
finally
{
    try
    {
        work.Delete(recursive: true);
    }
    catch (IOException)
    {
        // the killed service may still hold a file for a moment
    }
}

static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

int Arg(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length && int.TryParse(args[index + 1], CultureInfo.InvariantCulture, out var value) ? value : fallback;
}

internal sealed record HttpContentPair(byte[] Body, long Timestamp, string Signature);
