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

    /// <summary>An automatic acknowledgement of every new ticket from a template (off by default).</summary>
    public AutoAcknowledgementSettings? AutoAcknowledgement { get; init; }

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
        if (AutoAcknowledgement is not null)
            foreach (var problem in AutoAcknowledgement.Validate("autoAcknowledgement"))
                yield return problem;
    }

    internal IEnumerable<SettingsProblem> ValidateForwarding()
    {
        if (Forwarding is null)
            yield break;
        if (Forwarding.Enabled && string.IsNullOrWhiteSpace(Forwarding.TrustedAuthServId))
            yield return new SettingsProblem("forwarding.trustedAuthServId",
                "forwarding.trustedAuthServId is required when forwarding is enabled: the authserv-id your mail server writes in Authentication-Results headers (anyone can write an agent's address into From; only the server's DKIM/DMARC verdict shows the agent sent it).");
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

    /// <summary>Whether IDLE is used when the server offers it; false polls every <see cref="EmailChannelOptions.PollInterval"/>
    /// (servers or proxies that drop idle connections).</summary>
    public bool Idle { get; init; } = true;

    /// <summary>The SHA-256 fingerprint (hex, colons allowed) of a certificate trusted although it does not validate
    /// (a self-signed one). Only that certificate; validation is never switched off.</summary>
    public string? TrustedCertificate { get; init; }

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
        if (CertificateTrust.Problem($"{prefix}.trustedCertificate", TrustedCertificate) is { } trust)
            yield return trust;
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

    /// <summary>See <see cref="ImapSettings.TrustedCertificate"/>.</summary>
    public string? TrustedCertificate { get; init; }

    internal IEnumerable<SettingsProblem> Validate(string prefix)
    {
        foreach (var problem in EmailChannelSettings.ValidateServer(prefix, Host, Port))
            yield return problem;
        if (CertificateTrust.Problem($"{prefix}.trustedCertificate", TrustedCertificate) is { } trust)
            yield return trust;
    }
}

/// <summary>Forwarded mail from an agent: a ticket for the sender named in the forwarded headers (or the attached
/// message/rfc822), not for the agent.</summary>
public sealed record ForwardingSettings
{
    public bool Enabled { get; init; }

    /// <summary>Whether any console user's address counts as an agent's (besides <see cref="AgentAddresses"/>). Off by
    /// default: every admin's and locked-out user's address would vouch for forwards.</summary>
    public bool ConsoleUsers { get; init; }

    /// <summary>
    /// The authserv-id your receiving mail server writes in <c>Authentication-Results</c> (RFC 8601), e.g.
    /// "mx.example.com". A From header is anyone's to write: a mail counts as an agent's forward only when the topmost
    /// Authentication-Results of this server says dmarc=pass, or dkim=pass signed by the agent address's domain.
    /// Required when forwarding is enabled.
    /// </summary>
    public string? TrustedAuthServId { get; init; }

    /// <summary>More agent addresses (a shared team address, agents without a console account).</summary>
    public IReadOnlyList<string> AgentAddresses { get; init; } = [];
}

/// <summary>
/// The acknowledgement a customer gets when their mail opens a ticket. Sent once per ticket, never to machine-written
/// mail, never to our own addresses, and at most <see cref="EmailChannelOptions.MaxAutomaticMailsPerRecipient"/> per
/// recipient per window (an address counted without "+tag", and for Gmail without dots) and
/// <see cref="EmailChannelOptions.MaxAutomaticMailsPerAccount"/> per account. Placeholders: {{ticket}} (the number),
/// {{subject}} (the customer's subject), {{name}}; subject and name are a stranger's words, so they are filled in only
/// for a sender the receiving mail server authenticated (<see cref="TrustedAuthServId"/>), else left empty: the
/// acknowledgement must not relay a spoofed sender's text to a victim under our name ("relay spam").
/// </summary>
public sealed record AutoAcknowledgementSettings
{
    public bool Enabled { get; init; }

    /// <summary>"en", "zh", or "auto": Chinese when the customer wrote Chinese, English otherwise.</summary>
    public string Language { get; init => field = string.IsNullOrWhiteSpace(value) ? "auto" : value.Trim().ToLowerInvariant(); } = "auto";

    /// <summary>A subject of one's own; must name {{ticket}} (the tag "[#N]" lets a reply to it find the ticket). Null: the built-in one.</summary>
    public string? Subject { get; init; }

    /// <summary>A plain-text body of one's own. Null: the built-in one of the language.</summary>
    public string? Body { get; init; }

    /// <summary>The authserv-id of the receiving mail server's Authentication-Results (as for forwarding; that one is
    /// used when this is empty). Only a sender it passed (dmarc, or dkim of the From domain) sees its subject and
    /// name echoed.</summary>
    public string? TrustedAuthServId { get; init; }

    internal IEnumerable<SettingsProblem> Validate(string prefix)
    {
        if (Language is not ("auto" or "en" or "zh"))
            yield return new SettingsProblem($"{prefix}.language", $"{prefix}.language must be \"auto\", \"en\" or \"zh\".");
        if (Subject is not null && (Subject.Length > 300 || !Subject.Contains("{{ticket}}", StringComparison.Ordinal)))
            yield return new SettingsProblem($"{prefix}.subject", $"{prefix}.subject is at most 300 characters and must contain {{{{ticket}}}} (replies find the ticket by it).");
        if (Body is { Length: > 20_000 })
            yield return new SettingsProblem($"{prefix}.body", $"{prefix}.body is at most 20,000 characters.");
    }
}
