using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Crm.Connectors.Email;

public static class EmailChannelExtensions
{
    /// <summary>The email channel: options, its settings type, one IMAP reader per enabled mailbox and the SMTP sender for the outbox.</summary>
    public static IHostApplicationBuilder AddEmailChannel(this IHostApplicationBuilder builder)
    {
        // GB2312, Big5, windows-125x and the other legacy charsets of old mail are not in .NET by default.
        System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);
        builder.Services.AddOptions<EmailChannelOptions>().BindConfiguration(EmailChannelOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddChannelSettings<EmailChannelSettings>(ChannelKind.Email, IdentityKind.Email);
        builder.Services.AddSingleton<MimeMessageMapper>();
        builder.Services.AddSingleton<AutomaticMailSignal>();
        builder.Services.AddSingleton<AutoAcknowledgements>();
        builder.Services.AddHostedService<AutomaticMailSender>();
        builder.Services.AddSingleton<EmailIngest>();
        builder.Services.AddOptions<EmailIngestLimits>().BindConfiguration(EmailIngestLimits.Section);
        builder.Services.AddSingleton<IOutboundSender, SmtpSender>();
        builder.Services.AddSingleton<EmailQuarantine>();
        builder.Services.AddConnectorLeases();
        builder.Services.AddSingleton<ImapMailboxSupervisor>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<ImapMailboxSupervisor>());
        builder.Services.AddHostedService<QuarantinePruner>();
        return builder;
    }
}
