using System.Diagnostics;
using Crm.Service.Tests.Support;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>
/// A real Postfix (SMTP) → LMTP → Dovecot (IMAP with IDLE) on loopback ports picked free, all its files in its own
/// temp folder, started as root without systemd by Email/MailServer/mailsys.sh and stopped by the PIDs it recorded.
/// Users: support@example.test / support-pw and customer@example.test / customer-pw; only @example.test is delivered.
/// </summary>
internal sealed class MailServer : IAsyncDisposable
{
    public const string Support = "support@example.test";
    public const string SupportPassword = "support-pw";
    public const string Customer = "customer@example.test";
    public const string CustomerPassword = "customer-pw";

    private static readonly string Script = Path.Combine(AppContext.BaseDirectory, "Email", "MailServer", "mailsys.sh");

    private MailServer(string directory, int smtpPort, int imapPort, int imapsPort, int smtpsPort)
    {
        Directory_ = directory;
        SmtpPort = smtpPort;
        ImapPort = imapPort;
        ImapsPort = imapsPort;
        SmtpsPort = smtpsPort;
    }

    /// <summary>IMAP with TLS from the first byte; the plain IMAP and SMTP ports offer STARTTLS.</summary>
    public int ImapsPort { get; }

    /// <summary>SMTP with TLS from the first byte (TLS required).</summary>
    public int SmtpsPort { get; }

    /// <summary>The SHA-256 fingerprint of the servers' self-signed certificate (made at start).</summary>
    public string CertificateFingerprint =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(Directory_, "tls", "cert.pem"))).RawData));

    // Short: the folder holds unix sockets, whose paths may not exceed ~100 bytes.
    private string Directory_ { get; }

    public int SmtpPort { get; }

    public int ImapPort { get; }

    public static async Task<MailServer> StartAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            var directory = Path.Combine("/tmp", "mailtest-" + Guid.NewGuid().ToString("N")[..10]);
            var server = new MailServer(directory, FreePorts.Next(), FreePorts.Next(), FreePorts.Next(), FreePorts.Next());
            var (code, output) = await RunAsync(["start", directory, .. new[] { server.SmtpPort, server.ImapPort, server.ImapsPort, server.SmtpsPort }.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
            if (code == 0)
                return server;
            // A port taken between picking and binding: pick others.
            if (attempt == 3 || !output.Contains("already in use", StringComparison.Ordinal))
                throw new InvalidOperationException($"Mail server did not start ({code}): {output}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await RunAsync("stop", Directory_);
        try
        {
            Directory.Delete(Directory_, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Adds a mailbox user; Dovecot re-reads its passwd file at most once a second, so this waits for that.</summary>
    public async Task AddUserAsync(string address, string password)
    {
        await File.AppendAllTextAsync(Path.Combine(Directory_, "dovecot", "passwd"), $"{address}:{{PLAIN}}{password}:mail:mail\n");
        await Task.Delay(1100);
    }

    /// <summary>Submits a mail on the SMTP port (loopback is a trusted network: no login needed).</summary>
    public async Task SendAsync(MimeMessage message)
    {
        using var client = new SmtpClient();
        await client.ConnectAsync("127.0.0.1", SmtpPort, SecureSocketOptions.None);
        await client.SendAsync(message);
        await client.DisconnectAsync(true);
    }

    /// <summary>Appends raw bytes to a user's INBOX over IMAP, as a delivery would (no SMTP rewriting).</summary>
    public async Task<uint> AppendAsync(string user, string password, byte[] raw, string folder = "INBOX")
    {
        using var client = await LoginAsync(user, password);
        var target = await client.GetFolderAsync(folder);
        using var stream = new MemoryStream(raw);
        var message = await MimeMessage.LoadAsync(stream);
        var uid = await target.AppendAsync(message, MessageFlags.None);
        await client.DisconnectAsync(true);
        return uid?.Id ?? 0;
    }

    /// <summary>Every mail in a user's folder with its UID and flags.</summary>
    public async Task<List<(uint Uid, MessageFlags Flags, MimeMessage Message)>> ReadAsync(string user, string password, string folder = "INBOX")
    {
        using var client = await LoginAsync(user, password);
        var inbox = await client.GetFolderAsync(folder);
        await inbox.OpenAsync(FolderAccess.ReadOnly);
        var result = new List<(uint, MessageFlags, MimeMessage)>();
        if (inbox.Count > 0)
            foreach (var summary in await inbox.FetchAsync(0, -1, new FetchRequest(MessageSummaryItems.UniqueId | MessageSummaryItems.Flags)))
                result.Add((summary.UniqueId.Id, summary.Flags ?? MessageFlags.None, await inbox.GetMessageAsync(summary.UniqueId)));
        await client.DisconnectAsync(true);
        return result;
    }

    public async Task<ImapClient> LoginAsync(string user, string password)
    {
        var client = new ImapClient();
        await client.ConnectAsync("127.0.0.1", ImapPort, SecureSocketOptions.None);
        await client.AuthenticateAsync(user, password);
        return client;
    }

    /// <summary>The admin API's settings of an email channel reading <paramref name="user"/>'s INBOX on this server.</summary>
    public object ChannelSettings(string user = Support, string password = SupportPassword, string afterProcessing = "seen", int? imapPort = null, string? address = null) => new
    {
        address = address ?? user,
        displayName = "Example Support",
        imap = new { host = "127.0.0.1", port = imapPort ?? ImapPort, security = "none", user, password, folder = "INBOX", afterProcessing },
        smtp = new { host = "127.0.0.1", port = SmtpPort, security = "none", user, password },
    };

    private static async Task<(int Code, string Output)> RunAsync(params string[] arguments)
    {
        // The daemons inherit the script's output: a pipe would stay open as long as they run, so it goes to a file.
        var log = Path.GetTempFileName();
        try
        {
            var start = new ProcessStartInfo("bash", ["-c", "bash \"$0\" \"$@\" >\"$MAILSYS_LOG\" 2>&1 </dev/null", Script, .. arguments]) { UseShellExecute = false };
            start.Environment["MAILSYS_LOG"] = log;
            using var process = Process.Start(start)!;
            await process.WaitForExitAsync();
            return (process.ExitCode, await File.ReadAllTextAsync(log));
        }
        finally
        {
            File.Delete(log);
        }
    }
}
