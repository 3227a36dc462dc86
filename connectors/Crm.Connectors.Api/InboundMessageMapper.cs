using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Crm.Connectors.Api;

/// <summary>Validates a bridge's request and maps it to the channel-neutral <see cref="InboundMessage"/>.</summary>
internal static class InboundMessageMapper
{
    private const int MaxIdLength = 255;

    public static (InboundMessage? Message, ProblemHttpResult? Problem) Map(string channelId, InboundMessageRequest request, byte[] rawBody, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(request.MessageId))
            return Fail("messageId", "messageId is required: the bridge's own id of this message (used to drop redeliveries).");
        if (request.MessageId.Length > MaxIdLength)
            return Fail("messageId", $"messageId is longer than {MaxIdLength} characters.");
        if (request.Sender is null)
            return Fail("sender", "sender is required: { \"id\": \"…\", \"kind\": \"external|phone|email\", \"name\": \"…\" }.");
        if (string.IsNullOrWhiteSpace(request.Sender.Id))
            return Fail("sender.id", "sender.id is required.");
        if (request.Sender.Id.Length > 320)
            return Fail("sender.id", "sender.id is longer than 320 characters.");
        foreach (var (field, value) in new[] { ("messageId", request.MessageId), ("sender.id", request.Sender.Id), ("threadKey", request.ThreadKey) })
        {
            // Ids end up in keys, logs, the change feed and agents' screens: no line breaks, controls or bidi overrides.
            if (value is not null && value.Any(IsUnsafeInId))
                return Fail(field, $"{field} contains control or bidirectional-override characters.");
        }
        IdentityKind? kind = (request.Sender.Kind ?? "external").ToLowerInvariant() switch
        {
            "external" => IdentityKind.External,
            "phone" => IdentityKind.Phone,
            "email" => IdentityKind.Email,
            _ => null,
        };
        if (kind is null)
            return Fail("sender.kind", "sender.kind must be one of: external, phone, email.");
        string identityKey;
        try
        {
            identityKey = GrainKeys.Identity(kind.Value, request.Sender.Id, channelId);
        }
        catch (FormatException ex)
        {
            return Fail("sender.id", ex.Message);
        }
        // One conversation per contact unless the bridge names its own threads; the normalized identity
        // makes "+1 555 010 2030" and "+15550102030" one thread.
        var threadKey = string.IsNullOrWhiteSpace(request.ThreadKey) ? identityKey : request.ThreadKey;
        if (threadKey.Length > MaxIdLength)
            return Fail("threadKey", $"threadKey is longer than {MaxIdLength} characters.");
        if (request.Subject is { Length: > 1000 })
            return Fail("subject", "subject is longer than 1000 characters.");
        if (request.Sender.Name is { Length: > 200 })
            return Fail("sender.name", "sender.name is longer than 200 characters.");

        var attachments = new List<InboundAttachment>();
        for (var i = 0; i < (request.Attachments?.Count ?? 0); i++)
        {
            var attachment = request.Attachments![i];
            if (attachment is null)
                return Fail($"attachments[{i}]", "An attachment must be an object.");
            if (string.IsNullOrEmpty(attachment.ContentBase64))
                return Fail($"attachments[{i}].contentBase64", "contentBase64 is required.");
            byte[] content;
            try
            {
                content = Convert.FromBase64String(attachment.ContentBase64);
            }
            catch (FormatException)
            {
                return Fail($"attachments[{i}].contentBase64", "contentBase64 is not valid base64.");
            }
            attachments.Add(new InboundAttachment(attachment.FileName ?? "attachment", attachment.ContentType, content));
        }
        if (string.IsNullOrWhiteSpace(request.Text) && string.IsNullOrWhiteSpace(request.Html) && attachments.Count == 0)
            return Fail("text", "A message needs text, html or at least one attachment.");

        return (new InboundMessage
        {
            ChannelAccountId = channelId,
            ThreadKey = threadKey,
            ExternalMessageId = request.MessageId,
            Sender = new SenderIdentity(kind.Value, request.Sender.Id, request.Sender.Name),
            SentAt = request.SentAt ?? now,
            Subject = request.Subject,
            Text = request.Text,
            Html = request.Html,
            Attachments = attachments,
            RawSource = rawBody,
            RawContentType = "application/json",
        }, null);
    }

    private static bool IsUnsafeInId(char c) => char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069' or '\u200E' or '\u200F';

    private static (InboundMessage?, ProblemHttpResult?) Fail(string field, string detail) => (null, Problems.Invalid(field, detail));
}
