using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;

namespace Crm.Service.Grains;

/// <summary>What a customer's new message does to a ticket.</summary>
public enum CustomerMessageEffect
{
    /// <summary>The ticket takes it as it is (new or open).</summary>
    Join,
    /// <summary>The ticket takes it and goes back to open (resolved within the window, pending, on hold).</summary>
    Reopen,
    /// <summary>Resolved longer ago than the window, but the auto-close has not run yet: close now, then follow up.</summary>
    CloseThenFollowUp,
    /// <summary>Closed: the message opens a follow-up ticket.</summary>
    FollowUp,
}

/// <summary>One changed field, for the audit history.</summary>
internal sealed record FieldChange(string Field, string? OldValue, string? NewValue);

/// <summary>
/// The ticket's rules as plain functions of its state: status transitions, the reopen window, the audit diff and the
/// fingerprint of an idempotent reply. <see cref="TicketGrain"/> orchestrates (load, call, commit); these decide.
/// </summary>
internal static class TicketRules
{
    /// <summary>Refuses a status change the ticket's state does not allow; a no-op change is always allowed.</summary>
    public static void EnsureStatusChangeAllowed(TicketRecord ticket, TicketStatus to)
    {
        if (!Enum.IsDefined(to))
            throw new DomainException(DomainErrorKind.Invalid, $"{(int)to} is not a ticket status.", "status");
        if (to == ticket.Status)
            return;
        if (ticket.Status == TicketStatus.Closed)
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{ticket.Number} is closed and cannot change status; the customer's next message opens a follow-up.", "status");
    }

    /// <summary>Sets the status and the timestamps that go with it.</summary>
    public static void ApplyStatus(TicketRecord ticket, TicketStatus to, DateTimeOffset now)
    {
        if (to == ticket.Status)
            return;
        ticket.Status = to;
        ticket.ResolvedAt = to == TicketStatus.Resolved ? now : to == TicketStatus.Closed ? ticket.ResolvedAt : null;
        ticket.ClosedAt = to == TicketStatus.Closed ? now : null;
    }

    /// <summary>Whether a resolved ticket's reopen window has passed (then it closes, and the next message follows up).</summary>
    public static bool ReopenWindowPassed(TicketRecord ticket, DateTimeOffset now, TimeSpan reopenWindow) =>
        ticket is { Status: TicketStatus.Resolved, ResolvedAt: { } resolvedAt } && now - resolvedAt >= reopenWindow;

    /// <param name="automatic">A machine wrote it (an out-of-office, a list mail): it is kept on the ticket as it is;
    /// reopening or following up on it would bounce resolved work back into the queues.</param>
    public static CustomerMessageEffect OnCustomerMessage(TicketRecord ticket, DateTimeOffset now, TimeSpan reopenWindow, bool automatic = false) => ticket.Status switch
    {
        _ when automatic => CustomerMessageEffect.Join,
        TicketStatus.Closed => CustomerMessageEffect.FollowUp,
        TicketStatus.Resolved when ReopenWindowPassed(ticket, now, reopenWindow) => CustomerMessageEffect.CloseThenFollowUp,
        TicketStatus.Resolved or TicketStatus.Pending or TicketStatus.OnHold => CustomerMessageEffect.Reopen,
        _ => CustomerMessageEffect.Join,
    };

    /// <summary>What a logged call does to the ticket's status: an inbound call as a customer's message (never
    /// automatic); an outbound call as an agent's reply, which only a closed ticket refuses (a follow-up effect).</summary>
    public static CustomerMessageEffect EffectOfCall(TicketRecord ticket, MessageDirection direction, DateTimeOffset now, TimeSpan reopenWindow) =>
        direction == MessageDirection.Inbound ? OnCustomerMessage(ticket, now, reopenWindow)
        : ticket.Status == TicketStatus.Closed ? CustomerMessageEffect.FollowUp
        : CustomerMessageEffect.Join;

    /// <summary>Refuses a call the ticket cannot take (review CR4), worded by the ticket's status: a closed ticket takes
    /// no call (as it takes no reply); a customer's call on a ticket resolved longer ago than the reopen window would
    /// open a follow-up, which needs a conversation a call does not have. An agent's call there is taken, as a reply is.</summary>
    public static void EnsureCallAllowed(TicketRecord ticket, MessageDirection direction, DateTimeOffset now, TimeSpan reopenWindow)
    {
        switch (EffectOfCall(ticket, direction, now, reopenWindow))
        {
            case CustomerMessageEffect.FollowUp:
                throw new DomainException(DomainErrorKind.Conflict,
                    $"Ticket #{ticket.Number} is closed; log the call on the customer, or on the ticket the customer's next message opens.", "number");
            case CustomerMessageEffect.CloseThenFollowUp:
                throw new DomainException(DomainErrorKind.Conflict,
                    $"Ticket #{ticket.Number} was resolved longer ago than the reopen window, so the customer's call would open a follow-up, which a call cannot; log the call on the customer, or on the ticket the customer's next message opens.", "number");
        }
    }

    /// <summary>Whether a call reached the other person. The agent says so (<see cref="PhoneCall.Connected"/>, the
    /// form's "Answered", review CX1); only a call from a client that does not say falls back to the rule of review CR3:
    /// it lasted and its result is not one of the missed ones. Only such a call is a response.</summary>
    public static bool Connected(PhoneCall call) => call.Connected ?? (call.DurationSeconds > 0
        && !(call.Result is { } result && MissedResults.Contains(result.Trim().TrimEnd('.', '!', '。', '！'))));

    /// <summary>Results that say the call did not reach anyone (compared without case), for calls logged without
    /// <see cref="PhoneCall.Connected"/>; any other text, or none, with a duration is a call that connected.</summary>
    public static readonly IReadOnlySet<string> MissedResults = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "no answer", "no-answer", "not answered", "unanswered", "missed", "busy", "voicemail", "left voicemail",
        "left a voicemail", "failed", "unreachable", "not reachable", "wrong number", "cancelled", "canceled",
        // The zh-CN console's agents type these (review CX1).
        "未接通", "未接", "无人接听", "没人接", "占线", "语音信箱", "已留言", "空号", "关机", "拒接",
    };

    /// <summary>Applies a logged call (already allowed by <see cref="EnsureCallAllowed"/>) to the row, as Zammad treats
    /// its phone articles by sender. The customer's call reopens a resolved, pending or on-hold ticket and is the
    /// customer's latest message (the next-response clock runs from it); one an agent answered (<see cref="Connected"/>)
    /// is the agent's response at once too, so it starts no clock, stops a running one and opens a New ticket. The agent's call opens a new
    /// ticket as a reply does and, when it connected, is the agent's response (first response, last reply); a missed
    /// one moves no clock. The time is when the call is logged, as for every message: a call logged late never moves a
    /// clock back.</summary>
    public static void ApplyCall(TicketRecord ticket, PhoneCall call, DateTimeOffset now, TimeSpan reopenWindow)
    {
        if (call.Direction == MessageDirection.Inbound)
        {
            if (OnCustomerMessage(ticket, now, reopenWindow) == CustomerMessageEffect.Reopen)
                ApplyStatus(ticket, TicketStatus.Open, now);
            ticket.LastCustomerMessageAt = now;
        }
        else if (ticket.Status == TicketStatus.New)
            ApplyStatus(ticket, TicketStatus.Open, now);
        if (!Connected(call))
            return;
        // An agent served the customer: the ticket is started, as after a reply (review CX2: an answered inbound call on
        // a New ticket left it New, which the offline return and the New filters read as not yet started).
        if (ticket.Status == TicketStatus.New)
            ApplyStatus(ticket, TicketStatus.Open, now);
        ticket.FirstResponseAt ??= now;
        ticket.LastAgentReplyAt = now;
    }

    /// <summary>Whether a conversation may join this ticket: one it lists, or any of the same customer (a merge whose
    /// conversation pointer moved before the target listed it). Another customer's conversation never joins.</summary>
    public static bool AcceptsConversation(TicketRecord ticket, Guid conversationId, Guid conversationCustomerId) =>
        ticket.ConversationIds.Contains(conversationId) || ticket.CustomerId == conversationCustomerId;

    public static void ApplyChange(TicketRecord ticket, TicketChange change, DateTimeOffset now)
    {
        if (change.Status is { } status)
        {
            EnsureStatusChangeAllowed(ticket, status);
            ApplyStatus(ticket, status, now);
        }
        if (change.Priority is { } priority)
        {
            if (!Enum.IsDefined(priority))
                throw new DomainException(DomainErrorKind.Invalid, $"{(int)priority} is not a ticket priority.", "priority");
            ticket.Priority = priority;
        }
        if (change.Subject is { } subject && subject.Trim() != ticket.Subject)
            ticket.Subject = TextRules.SubjectFor(subject, null);
        if (change.Assignee is { } assignee)
            ticket.Assignee = NullIfEmpty(assignee);
        if (change.Team is { } team)
            ticket.Team = NullIfEmpty(team);
        if (change.Tags is { } tags)
            ticket.Tags = TextRules.NormalizeTags(tags);
        if (change.AddTags is { Count: > 0 } || change.RemoveTags is { Count: > 0 })
        {
            var removed = TextRules.NormalizeTags(change.RemoveTags ?? []);
            var result = ticket.Tags.Concat(TextRules.NormalizeTags(change.AddTags ?? [])).Where(t => !removed.Contains(t))
                .Select(t => t.Trim().ToLowerInvariant()).Distinct().ToList();
            if (result.Count > InputLimits.MaxTagsPerEntity)
                throw new DomainException(DomainErrorKind.Invalid,
                    $"Ticket #{ticket.Number} would have {result.Count} tags; at most {InputLimits.MaxTagsPerEntity} are allowed. Remove some first.", "tags");
            ticket.Tags = TextRules.NormalizeTags(result);
        }
    }

    /// <summary>The fingerprint of a note request: the same request id with another text is another request.</summary>
    public static string NoteFingerprint(long ticketNumber, string text) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"note;{ticketNumber.ToString(CultureInfo.InvariantCulture)};{text.Length.ToString(CultureInfo.InvariantCulture)}:{text}")));

    /// <summary>The fields an agent sees change, old and new, in a fixed order.</summary>
    public static IReadOnlyList<FieldChange> Diff(TicketRecord before, TicketRecord after)
    {
        var changes = new List<FieldChange>();
        void Add(string field, string? oldValue, string? newValue)
        {
            if (oldValue != newValue)
                changes.Add(new FieldChange(field, oldValue, newValue));
        }
        Add("status", before.Status.ToString(), after.Status.ToString());
        Add("priority", before.Priority.ToString(), after.Priority.ToString());
        Add("subject", before.Subject, after.Subject);
        Add("assignee", before.Assignee, after.Assignee);
        Add("team", before.Team, after.Team);
        Add("tags", string.Join(",", before.Tags), string.Join(",", after.Tags));
        Add("customer", before.CustomerId.ToString(), after.CustomerId.ToString());
        Add("mergedInto", Format(before.MergedInto), Format(after.MergedInto));
        return changes;
    }

    /// <summary>The address of a Cc entry as the API stores it ("Name &lt;a@b&gt;" or "a@b"): what the SMTP sender
    /// will parse out of it, for the grain's own check of the address (the grain has no MIME parser).</summary>
    public static string CcAddressOf(string entry)
    {
        var text = entry.Trim();
        if (!text.EndsWith('>'))
            return text;
        var open = text.LastIndexOf('<');
        return open < 0 ? text : text[(open + 1)..^1];
    }

    /// <summary>A stable fingerprint of what a reply asks for, so a reused Idempotency-Key with another request is told apart.</summary>
    public static string ReplyFingerprint(long ticketNumber, AgentReply reply)
    {
        // Each part is length-prefixed, so no text can shift a boundary and make two requests look alike.
        var canonical = new StringBuilder();
        string?[] parts =
        [
            ticketNumber.ToString(CultureInfo.InvariantCulture),
            reply.ConversationId?.ToString(),
            reply.Text,
            reply.Html,
            reply.SetStatus?.ToString(),
        ];
        // Files and Cc only when present, so a key stored before replies had them keeps its fingerprint.
        if (reply.Attachments.Count > 0 || reply.Cc.Count > 0)
            parts = [.. parts, .. reply.Cc, .. reply.Attachments.Select(a => a.FileName + "/" + Convert.ToHexStringLower(SHA256.HashData(a.Content)))];
        foreach (var part in parts)
            canonical.Append(part is null ? "-1" : part.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(part).Append(';');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));
    }

    public static string? Format(long? number) => number?.ToString(CultureInfo.InvariantCulture);

    private static string? NullIfEmpty(string value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
