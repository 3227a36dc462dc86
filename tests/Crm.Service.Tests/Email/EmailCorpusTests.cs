using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Email;

/// <summary>
/// Every mail of the corpora (tests/Crm.Service.Tests/Corpora/email, copied unedited; reply-parsing excluded) goes
/// through the email channel's inbound path into a real store: each becomes a stored message or a quarantined raw
/// source with a reason, and none throws (which would stall the mailbox that holds it).
/// </summary>
public sealed class EmailCorpusTests(ITestOutputHelper output) : AppTest
{
    /// <summary>Not mails: expected parses, listings, documentation, and the attachments some corpora keep beside their mails.</summary>
    private static readonly HashSet<string> NotMail =
        [".json", ".xml", ".out", ".golden", ".tnef", ".list", ".md", ".png", ".html", ".bin", ".doc", ".zip", ".wav", ".tiff", ".pdf", ".jpg", ".gif", ".dat"];

    public static IEnumerable<string> CorpusMails() =>
        Directory.EnumerateFiles(MimeMappingTests.Corpus, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(MimeMappingTests.Corpus, f).StartsWith("reply-parsing", StringComparison.Ordinal))
            .Where(f => !NotMail.Contains(Path.GetExtension(f).ToLowerInvariant()) && !Path.GetFileName(f).StartsWith('.'))
            .Order(StringComparer.Ordinal);

    [Fact]
    public async Task Every_corpus_mail_is_stored_or_quarantined_with_a_reason()
    {
        using (var admin = App.Admin())
        {
            // The reader of this account finds no server (nothing listens on the port) and backs off; the test drives the inbound path itself.
            var settings = new
            {
                address = "support@example.test",
                imap = new { host = "127.0.0.1", port = FreePorts.Next(), security = "none", user = "support", password = "x" },
                smtp = new { host = "127.0.0.1", port = FreePorts.Next(), security = "none" },
            };
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();
        }
        var ingest = App.Services.GetRequiredService<EmailIngest>();
        var account = App.Services.GetRequiredService<IChannelAccounts>().Find("support")!;
        var files = CorpusMails().ToList();
        var stored = 0;
        var quarantined = 0;
        var failures = new List<string>();
        var uid = 0u;
        foreach (var file in files)
        {
            uid++;
            try
            {
                switch (await ingest.ProcessAsync(account, "INBOX", 1, uid, await File.ReadAllBytesAsync(file)))
                {
                    case MailOutcome.Stored:
                        stored++;
                        break;
                    case MailOutcome.Quarantined { Reason.Length: > 0 }:
                        quarantined++;
                        break;
                    default:
                        failures.Add($"{file}: no outcome");
                        break;
                }
            }
            catch (Exception ex)
            {
                failures.Add($"{Path.GetRelativePath(MimeMappingTests.Corpus, file)}: {ex.GetType().Name}: {ex.Message}");
            }
        }

        output.WriteLine($"{files.Count} mails: {stored} stored (or duplicates of stored ones), {quarantined} quarantined");
        Assert.True(files.Count > 1000, $"only {files.Count} corpus mails found");
        Assert.True(failures.Count == 0, $"{failures.Count} of {files.Count} mails failed:\n{string.Join("\n", failures.Take(30))}");
        Assert.Equal(files.Count, stored + quarantined);
        // Every quarantined mail is kept with its reason (identical bytes are kept once).
        var rows = await App.QueryAsync(db => db.QuarantinedMail.AsNoTracking().ToListAsync());
        Assert.All(rows, r => Assert.False(string.IsNullOrWhiteSpace(r.Reason)));
        Assert.True(rows.Count > 0 && rows.Count <= quarantined);
    }
}
