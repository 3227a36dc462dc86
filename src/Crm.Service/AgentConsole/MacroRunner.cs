using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Replies;
using Crm.Service.Infrastructure.Teams;

namespace Crm.Service.AgentConsole;

/// <summary>Who applies a macro: the audit actor, the name and email for placeholders and "me", and the scope of the
/// reply's idempotency key (one apply request = one reply, even when posted twice).</summary>
public sealed record MacroCaller(string Actor, string AgentName, string AgentEmail, string RequestScope);

/// <summary>
/// Applies a macro to one ticket through the same grain calls as the ticket page. The reply goes first and carries
/// the macro's status (as a reply with "set status" does), so a ticket is never resolved by a macro whose reply was
/// refused; then the other field changes in one <see cref="ITicketGrain.ChangeAsync"/>; then the notes. The caller
/// checks that the person may see the ticket.
/// </summary>
public sealed class MacroRunner(IGrainFactory grains, TicketQueries tickets, TeamDirectory teams)
{
    /// <returns>null when applied, else why not (the ticket is unchanged unless the reply was already sent).</returns>
    public async Task<string?> ApplyAsync(MacroRecord macro, long number, MacroCaller caller, CancellationToken cancellationToken)
    {
        if (await tickets.GetAsync(number, cancellationToken) is not { } ticket)
            return "no such ticket";
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
        if (team is { Length: > 0 } && await teams.GetAsync(team, cancellationToken) is null)
            return $"there is no team '{team}' (fix the macro)";
        var ticketGrain = grains.GetGrain<ITicketGrain>(number);
        try
        {
            if (reply is not null)
            {
                var agentReply = new AgentReply
                {
                    Actor = caller.Actor,
                    Text = reply,
                    SetStatus = status,
                    RequestId = $"{caller.RequestScope}:macro:{macro.Id:N}:{number}",
                };
                Grains.InputLimits.CheckReply(agentReply);
                await ticketGrain.ReplyAsync(agentReply, cancellationToken);
                status = null;
            }
            var change = new TicketChange
            {
                Status = status,
                Priority = priority,
                Team = team,
                Assignee = assignee,
                Tags = tags.Count > 0 ? [.. ticket.Tags.Concat(tags).Distinct(StringComparer.Ordinal)] : null,
            };
            if (change != new TicketChange())
            {
                Grains.InputLimits.CheckTicketChange(change);
                await ticketGrain.ChangeAsync(change, caller.Actor, cancellationToken);
            }
            foreach (var note in notes)
            {
                Grains.InputLimits.CheckNote(note);
                await ticketGrain.AddNoteAsync(caller.Actor, note, cancellationToken);
            }
        }
        catch (DomainException refused)
        {
            return refused.Message;
        }
        return null;
    }
}
