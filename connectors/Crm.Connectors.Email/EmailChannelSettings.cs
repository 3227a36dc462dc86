using Crm.Connectors.Abstractions;
using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>How a connection to a mail server is secured.</summary>
public enum MailSecurity
{
    /// <summary>Plain text; only for servers on loopback or a trusted network.</summary>
    None,
    /// <summary>Plain connect, then STARTTLS (required, never silently skipped).</summary>
    Starttls,
    /// <summary>TLS from the first byte (IMAPS 993, SMTPS 465).</summary>
    Ssl,
}

/// <summary>The settings of an email channel account (the admin API's <c>settings</c> for kind "email").</summary>
public sealed record EmailChannelSettings : IChannelSettings
{
    /// <summary>The mailbox's address: customers write to it, replies come from it.</summary>
    public string? Address { get; init; }

    /// <summary>The name shown next to <see cref="Address"/> in replies ("Example Support").</summary>
    public string? DisplayName { get; init; }

    public ImapSettings? Imap { get; init; }

    public SmtpSettings? Smtp { get; init; }

    /// <summary>Mail an agent forwards to the mailbox opens a ticket for the original sender (off by default).</summary>
    public ForwardingSettings? Forwarding { get; init; }

    /// <summary>The domain of <see cref="Address"/>: the right-hand side of our Message-IDs.</summary>
    public string Domain => Address is { } address && address.LastIndexOf('@') is var at and > 0 ? address[(at + 1)..].ToLowerInvariant() : "localhost";

    public IEnumerable<SettingsProblem> Validate()
    {
        if (string.IsNullOrWhiteSpace(Address))
            yield return new SettingsProblem("address", "address is required: the mailbox's email address.");
        else if (!MailboxAddress.TryParse(Address, out var parsed) || parsed.Address != Address.Trim() || !Address.Contains('@', StringComparison.Ordinal))
            yield return new SettingsProblem("address", $"address '{Address}' is not an email address.");
        if (DisplayName is { Length: > 200 })
            yield return new SettingsProblem("displayName", "displayName is at most 200 characters.");
        if (Imap is null)
            yield return new SettingsProblem("imap", "imap is required: the server the mailbox is read from.");
        else
            foreach (var problem in Imap.Validate("imap"))
                yield return problem;
        if (Smtp is null)
            yield return new SettingsProblem("smtp", "smtp is required: the server replies are sent through.");
        else
            foreach (var problem in Smtp.Validate("smtp"))
                yield return problem;
        foreach (var problem in ValidateForwarding())
            yield return problem;
    }

    internal IEnumerable<SettingsProblem> ValidateForwarding()
    {
        if (Forwarding is null)
            yield break;
        if (Forwarding.AgentAddresses.Count > 500)
            yield return new SettingsProblem("forwarding.agentAddresses", "forwarding.agentAddresses holds at most 500 addresses.");
        foreach (var address in Forwarding.AgentAddresses)
            if (!MimeMessageMapper.IsAddress(address))
                yield return new SettingsProblem("forwarding.agentAddresses", $"forwarding.agentAddresses: '{address}' is not an email address.");
    }

    internal static IEnumerable<SettingsProblem> ValidateServer(string prefix, string? host, int port)
    {
        if (string.IsNullOrWhiteSpace(host) || host.Length > 253 || host.Any(char.IsWhiteSpace))
            yield return new SettingsProblem($"{prefix}.host", $"{prefix}.host is required: the server's host name or address.");
        if (port is < 1 or > 65535)
            yield return new SettingsProblem($"{prefix}.port", $"{prefix}.port must be between 1 and 65535.");
    }
}

/// <summary>Where and how the mailbox is read.</summary>
public sealed record ImapSettings
{
    public string? Host { get; init; }
    public int Port { get; init; } = 993;
    public MailSecurity Security { get; init; } = MailSecurity.Ssl;
    public string? User { get; init; }
    [SecretSetting]
    public string? Password { get; init; }
    public string Folder { get; init => field = string.IsNullOrWhiteSpace(value) ? "INBOX" : value; } = "INBOX";
    /// <summary>"seen" marks a stored mail \Seen; "move:{folder}" moves it there. Either happens only after the mail is stored.</summary>
    public string AfterProcessing { get; init => field = string.IsNullOrWhiteSpace(value) ? "seen" : value; } = "seen";

    /// <summary>The folder of "move:{folder}", or null for "seen".</summary>
    public string? MoveTo => AfterProcessing.StartsWith("move:", StringComparison.Ordinal) ? AfterProcessing[5..] : null;

    internal IEnumerable<SettingsProblem> Validate(string prefix)
    {
        foreach (var problem in EmailChannelSettings.ValidateServer(prefix, Host, Port))
            yield return problem;
        if (string.IsNullOrWhiteSpace(User))
            yield return new SettingsProblem($"{prefix}.user", $"{prefix}.user is required: the login of the mailbox.");
        if (Folder.Length > 200)
            yield return new SettingsProblem($"{prefix}.folder", $"{prefix}.folder is at most 200 characters.");
        if (AfterProcessing != "seen" && (MoveTo is not { Length: > 0 and <= 200 } target || target == Folder))
            yield return new SettingsProblem($"{prefix}.afterProcessing", $"{prefix}.afterProcessing must be \"seen\" or \"move:<folder>\" naming another folder.");
    }
}

/// <summary>Where replies are sent through.</summary>
public sealed record SmtpSettings
{
    public string? Host { get; init; }
    public int Port { get; init; } = 587;
    public MailSecurity Security { get; init; } = MailSecurity.Starttls;
    /// <summary>No user: the server accepts us without authentication (a relay on the same network).</summary>
    public string? User { get; init; }
    [SecretSetting]
    public string? Password { get; init; }

    internal IEnumerable<SettingsProblem> Validate(string prefix) => EmailChannelSettings.ValidateServer(prefix, Host, Port);
}

/// <summary>Forwarded mail from an agent: a ticket for the sender named in the forwarded headers (or the attached
/// message/rfc822), not for the agent.</summary>
public sealed record ForwardingSettings
{
    public bool Enabled { get; init; }

    /// <summary>Whether any console user's address counts as an agent's (besides <see cref="AgentAddresses"/>).</summary>
    public bool ConsoleUsers { get; init; } = true;

    /// <summary>More agent addresses (a shared team address, agents without a console account).</summary>
    public IReadOnlyList<string> AgentAddresses { get; init; } = [];
}
