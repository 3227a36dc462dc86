using Crm.Service.Contracts;

namespace Crm.Service.Grains;

/// <summary>
/// How much an agent may write into a ticket or a customer profile. Every stored list or text has a bound, so one
/// client cannot grow a row (rewritten whole on each change) without limit. The HTTP edge runs the same checks to
/// refuse early with a 422 naming the field; the grains run them again because they are the last line.
/// Every check runs before anything is changed, so a refused request leaves the entity as it was.
/// </summary>
public static class InputLimits
{
    public const int MaxTagsPerEntity = 50;
    public const int MaxTagLength = 64;
    public const int MaxCustomFields = 100;
    public const int MaxCustomFieldKeyLength = 64;
    public const int MaxCustomFieldValueLength = 4096;
    public const int MaxSubjectLength = TextRules.MaxSubjectLength;
    /// <summary>Customer name, organization, ticket assignee and team.</summary>
    public const int MaxNameLength = 200;
    /// <summary>A display name and an RFC 5321 address (320 characters) with room for quoting.</summary>
    public const int MaxEmailAddressLength = 600;
    /// <summary>A BCP 47 language tag is at most 35 characters.</summary>
    public const int MaxLanguageLength = 35;
    public const int MaxNotesLength = 10_000;
    /// <summary>A reply's text or HTML, or a note's text.</summary>
    public const int MaxMessageTextLength = 100_000;
    /// <summary>Longest request id of an idempotent call (a caller's scope plus the client's key).</summary>
    public const int MaxRequestIdLength = 400;

    public static void CheckTicketChange(TicketChange change)
    {
        CheckLength(change.Subject, MaxSubjectLength, "subject");
        CheckLength(change.Assignee, MaxNameLength, "assignee");
        CheckLength(change.Team, MaxNameLength, "team");
        if (change.Tags is { } tags)
            CheckTags(tags);
        if (change.AddTags is { } added)
            CheckTags(added);
        if (change.RemoveTags is { } removed)
            CheckTags(removed);
        CheckLength(change.RequestId, MaxRequestIdLength, "requestId");
    }

    public static void CheckReply(AgentReply reply)
    {
        CheckLength(reply.Text, MaxMessageTextLength, "text");
        CheckLength(reply.Html, MaxMessageTextLength, "html");
    }

    public static void CheckNote(string? text) => CheckLength(text, MaxMessageTextLength, "text");

    /// <summary>Checks a profile change against the fields the customer has now, so the count that matters is the
    /// one after the change (a request may remove some fields while adding others).</summary>
    public static void CheckProfileChange(CustomerProfileChange change, IReadOnlyDictionary<string, string> currentCustomFields)
    {
        CheckLength(change.Name, MaxNameLength, "name");
        CheckLength(change.Language, MaxLanguageLength, "language");
        CheckLength(change.Organization, MaxNameLength, "organization");
        CheckLength(change.Notes, MaxNotesLength, "notes");
        if (change.Tags is { } tags)
            CheckTags(tags);
        if (change.CustomFields is not { } fields)
            return;
        CheckCustomFields(fields);
        var after = currentCustomFields.Keys.Where(key => !fields.TryGetValue(key, out var value) || value is not null)
            .Concat(fields.Where(field => field.Value is not null && !currentCustomFields.ContainsKey(field.Key)).Select(field => field.Key))
            .Count();
        if (after > MaxCustomFields)
            throw Invalid($"A customer has at most {MaxCustomFields} custom fields; this change would leave {after}. Remove some (set them to null) first.", "customFields");
    }

    /// <summary>The request's own shape: null or blank tags, too long, too many once normalized.</summary>
    public static void CheckTags(IEnumerable<string?> tags)
    {
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            if (string.IsNullOrWhiteSpace(tag))
                throw Invalid("A tag cannot be null or empty.", "tags");
            var normalized = tag.Trim();
            if (normalized.Length > MaxTagLength)
                throw Invalid($"A tag is at most {MaxTagLength} characters; '{normalized[..16]}…' has {normalized.Length}.", "tags");
            distinct.Add(normalized.ToLowerInvariant());
        }
        if (distinct.Count > MaxTagsPerEntity)
            throw Invalid($"At most {MaxTagsPerEntity} tags; the request has {distinct.Count}.", "tags");
    }

    /// <summary>The request's own shape: keys present and short enough, values short enough, not too many.</summary>
    public static void CheckCustomFields(IReadOnlyDictionary<string, string?> fields)
    {
        if (fields.Count > MaxCustomFields)
            throw Invalid($"A customer has at most {MaxCustomFields} custom fields; the request sets {fields.Count}.", "customFields");
        foreach (var (key, value) in fields)
        {
            if (string.IsNullOrWhiteSpace(key))
                throw Invalid("A custom field needs a name.", "customFields");
            if (key.Length > MaxCustomFieldKeyLength)
                throw Invalid($"A custom field name is at most {MaxCustomFieldKeyLength} characters; '{key[..16]}…' has {key.Length}.", "customFields");
            if (value is { Length: > MaxCustomFieldValueLength })
                throw Invalid($"Custom field '{key}' is {value.Length} characters; the limit is {MaxCustomFieldValueLength}.", "customFields." + key);
        }
    }

    public static void CheckLength(string? value, int max, string field)
    {
        if (value is { Length: var length } && length > max)
            throw Invalid($"{field} is at most {max} characters; this one has {length}.", field);
    }

    private static DomainException Invalid(string message, string field) => new(DomainErrorKind.Invalid, message, field);
}
