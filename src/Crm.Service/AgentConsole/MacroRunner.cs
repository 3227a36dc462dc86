using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Replies;
using Crm.Service.Infrastructure.Teams;

namespace Crm.Service.AgentConsole;

/// <summary>Who applies a macro: the audit actor, and the name and email for placeholders and "me".</summary>
public sealed record MacroCaller(string Actor, string AgentName, string AgentEmail);

/// <summary>How an apply ended: <see cref="Error"/> null when every step is done; <see cref="ReplySent"/> says whether
/// the macro's reply went out (so a refusal after it is reported as partial, never as "not applied").</summary>
public sealed record MacroResult(string? Error, bool ReplySent)
{
    public bool Applied => Error is null;

    /// <summary>The refusal as a person reads it.</summary>
    public string Describe(string macroName) => ReplySent
        ? $"The macro \"{macroName}\" was applied only in part: its reply was sent, then: {Error}"
        : $"The macro \"{macroName}\" was not applied: {Error}";
}

/// <summary>
/// Applies a macro to one ticket through the same grain calls as the ticket page. Everything that can be checked
/// before anything is sent is checked first (team, tag count, lengths). The reply goes first and carries the macro's
/// status (as a reply with "set status" does), so a ticket is never resolved by a macro whose reply was refused; then
/// the other field changes in one <see cref="ITicketGrain.ChangeAsync"/> (tags added to the ticket as it is then, not
/// to a list read before); then the notes. Each step carries a request id derived from the request (the console
/// form's one-time id, the API's Idempotency-Key) with the person, the macro and its version and the ticket: the same
/// request again (a double click, a re-post, a retry after a timeout, the form re-rendered after a partial apply,
/// which keeps its id) does only the steps that are missing and never sends the reply twice, while a new request
/// (a freshly rendered form, another key) applies the macro again, as the agent asked (review routing2-console3 N2).
/// The caller checks that the person may see the ticket.
/// </summary>
public sealed class MacroRunner(IGrainFactory grains, TicketQueries tickets, TeamDirectory teams)
{
    /// <param name="request">What makes a retry a retry: the same value for the same apply, a new one for a new apply
    /// (scoped by the caller already, e.g. "console:{user}:{form id}" or "{key id}:{Idempotency-Key}").</param>
    public async Task<MacroResult> ApplyAsync(MacroRecord macro, long number, MacroCaller caller, string request, CancellationToken cancellationToken)
    {
        if (await tickets.GetAsync(number, cancellationToken) is not { } ticket)
            return new MacroResult("no such ticket", false);
        var values = new PlaceholderValues(ticket.CustomerName, ticket.Number, ticket.Subject, caller.AgentName, caller.AgentEmail);
        TicketStatus? status = null;
        TicketPriority? priority = null;
        string? team = null, assignee = null;
        var tags = new List<string>();
        var notes = new List<string>();
        string? reply = null;
        foreach (var action in macro.Actions)
        {
            switch (action.Kind)
            {
                case MacroActionKinds.Status: status = Enum.Parse<TicketStatus>(action.Value, ignoreCase: true); break;
                case MacroActionKinds.Priority: priority = Enum.Parse<TicketPriority>(action.Value, ignoreCase: true); break;
                case MacroActionKinds.Team: team = action.Value.Trim(); break;
                case MacroActionKinds.Assignee: assignee = action.Value.Trim() is "me" ? caller.AgentEmail : action.Value.Trim(); break;
                case MacroActionKinds.Tag: tags.Add(action.Value.Trim()); break;
                case MacroActionKinds.Note: notes.Add(Placeholders.Render(action.Value, values)); break;
                case MacroActionKinds.Reply: reply = Placeholders.Render(action.Value, values); break;
            }
        }
        var key = RequestKey(macro, ticket.Number, caller, request);
        var agentReply = reply is null ? null : new AgentReply { Actor = caller.Actor, Text = reply, SetStatus = status, RequestId = key + ":reply" };
        var change = new TicketChange
        {
            Status = reply is null ? status : null,
            Priority = priority,
            Team = team,
            Assignee = assignee,
            AddTags = tags.Count > 0 ? tags : null,
        };
        var changes = change != new TicketChange();
        // Checked before the reply, so a refusal that could be known leaves the ticket as it was.
        try
        {
            if (team is { Length: > 0 } && await teams.GetAsync(team, cancellationToken) is null)
                return new MacroResult($"there is no team '{team}' (fix the macro)", false);
            if (tags.Count > 0 && ticket.Tags.Union(tags.Select(t => t.ToLowerInvariant()), StringComparer.Ordinal).Count() > Grains.InputLimits.MaxTagsPerEntity)
                return new MacroResult($"the ticket would have more than {Grains.InputLimits.MaxTagsPerEntity} tags; remove some first", false);
            if (agentReply is not null)
                Grains.InputLimits.CheckReply(agentReply);
            Grains.InputLimits.CheckTicketChange(change);
            foreach (var note in notes)
                Grains.InputLimits.CheckNote(note);
        }
        catch (DomainException refused)
        {
            return new MacroResult(refused.Message, false);
        }
        var ticketGrain = grains.GetGrain<ITicketGrain>(number);
        var replySent = false;
        try
        {
            if (agentReply is not null)
            {
                await ticketGrain.ReplyAsync(agentReply, cancellationToken);
                replySent = true;
            }
            if (changes)
                await ticketGrain.ChangeAsync(change with { RequestId = key + ":change" }, caller.Actor, cancellationToken);
            for (var i = 0; i < notes.Count; i++)
                await ticketGrain.AddNoteAsync(caller.Actor, notes[i], $"{key}:note:{i}", cancellationToken);
        }
        catch (DomainException refused)
        {
            return new MacroResult(refused.Message, replySent);
        }
        return new MacroResult(null, replySent);
    }

    /// <summary>One apply (request) of this macro version by this person to this ticket. Hashed, so a long actor name
    /// or key never makes the key too long.</summary>
    private static string RequestKey(MacroRecord macro, long ticket, MacroCaller caller, string request)
    {
        var parts = string.Join('\n', caller.Actor, request, macro.Id.ToString("N"), macro.UpdatedAt.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ticket.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return "macro:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(parts)));
    }
}
