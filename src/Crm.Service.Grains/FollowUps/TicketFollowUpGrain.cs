using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Grains.FollowUps;

/// <summary>Tells people about follow-ups that are due: the host stores each notice per person, idempotent per
/// <see cref="FollowUpNotice.Cause"/>, and pushes it to the agents' consoles. Called before the milestone is stored, so a
/// crash in between repeats the call rather than losing the notice; a failure fails the tick, which comes again.</summary>
public interface IFollowUpNotifier
{
    Task NotifyAsync(FollowUpNotice notice, CancellationToken cancellationToken = default);
}

/// <summary>
/// A ticket's "follow up at". The time is stored, then a durable reminder (<see cref="ReminderName"/>) is set for it;
/// the tick acts on the stored time and the clock only, so a tick that comes late (host down at the time) acts at
/// once, and a repeated tick does nothing. Acting means: a pending ticket reopens (actor "follow-up"), the follow-up
/// is stored as fired, then the agent who set it and the assignee are notified.
/// </summary>
public sealed class TicketFollowUpGrain(IRoutingStore documents, IFollowUpNotifier notifier, IOptions<TicketOptions> options, TimeProvider time,
    ILogger<TicketFollowUpGrain> logger) : Grain, ITicketFollowUpGrain, IRemindable
{
    public const string ReminderName = "follow-up";
    public const string Actor = "follow-up";
    public static readonly TimeSpan MaxAhead = TimeSpan.FromDays(2 * 366);
    public const int MaxNoteLength = 1000;

    private TicketFollowUp? _state;
    private bool _loaded;

    private long Number => this.GetPrimaryKeyLong();
    private string DocumentId => Number.ToString(CultureInfo.InvariantCulture);

    public async Task<TicketFollowUp?> GetAsync() => await LoadAsync(CancellationToken.None);

    public async Task<TicketFollowUp> SetAsync(DateTimeOffset at, string actor, string? note, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        if (at > now + MaxAhead)
            throw new DomainException(DomainErrorKind.Invalid, $"A follow-up is at most {MaxAhead.Days} days ahead.", "at");
        if (note is { Length: > MaxNoteLength })
            throw new DomainException(DomainErrorKind.Invalid, $"The note is at most {MaxNoteLength} characters.", "note");
        var ticket = await GrainFactory.GetGrain<ITicketGrain>(Number).GetAsync()
            ?? throw new DomainException(DomainErrorKind.NotFound, $"No ticket #{Number}.", "number");
        if (ticket.MergedInto is not null || ticket.Status == TicketStatus.Closed)
            throw new DomainException(DomainErrorKind.Invalid, $"Ticket #{Number} is {(ticket.MergedInto is not null ? "merged into another ticket" : "closed")}; set the follow-up on the ticket that is open.", "number");
        await LoadAsync(cancellationToken);
        var next = new TicketFollowUp { At = at.ToUniversalTime(), SetBy = actor, Note = string.IsNullOrWhiteSpace(note) ? null : note.Trim(), SetAt = now };
        // The reminder first: a tick that finds no follow-up (a crash before the store) only removes the reminder,
        // while a stored follow-up without a reminder would never fire.
        var due = next.At - now;
        await this.RegisterOrUpdateReminder(ReminderName, due < TimeSpan.Zero ? TimeSpan.Zero : due, options.Value.ReminderPeriod);
        await SaveAsync(next, cancellationToken);
        if (due <= TimeSpan.Zero)
            await FireIfDueAsync(cancellationToken);
        return _state!;
    }

    public async Task<bool> ClearAsync(CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var had = _state is { FiredAt: null };
        await documents.DeleteAsync(RoutingKinds.TicketFollowUp, DocumentId, cancellationToken);
        _state = null;
        await UnregisterAsync();
        return had;
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == ReminderName)
            await FireIfDueAsync(CancellationToken.None);
    }

    private async Task FireIfDueAsync(CancellationToken cancellationToken)
    {
        var state = await LoadAsync(cancellationToken);
        var now = time.GetUtcNow();
        if (state is null || state.FiredAt is not null)
        {
            await UnregisterAsync();
            return;
        }
        if (state.At > now)
            return;
        // A ticket merged since then: the follow-up acts on the ticket it went into (a few hops at most).
        var number = Number;
        var ticket = await GrainFactory.GetGrain<ITicketGrain>(number).GetAsync();
        for (var hops = 0; hops < 5 && ticket?.MergedInto is { } into; hops++)
            ticket = await GrainFactory.GetGrain<ITicketGrain>(number = into).GetAsync();
        var reopened = false;
        // Only a pending ticket reopens (it waited for this moment); one the customer already reopened stays as it is.
        if (ticket is { Status: TicketStatus.Pending, MergedInto: null })
        {
            try
            {
                // One request id per follow-up: a tick repeated after a crash between the reopen and the "fired" mark
                // does not reopen the ticket again (the agent may have set it pending since).
                ticket = await GrainFactory.GetGrain<ITicketGrain>(number).ChangeAsync(
                    new TicketChange { Status = TicketStatus.Open, RequestId = $"follow-up:{Number}:{state.SetAt.UtcTicks}" }, Actor, cancellationToken);
                reopened = ticket.Status == TicketStatus.Open;
            }
            catch (DomainException ex)
            {
                // Closed or merged in the meantime: nothing to reopen; people are still told.
                logger.LogInformation(ex, "Ticket #{Number}: the follow-up could not reopen it", number);
            }
        }
        // The notice is stored (idempotent per follow-up) before the follow-up is marked fired: a crash in between
        // repeats the call, which stores and pushes nothing twice, rather than losing the notice.
        var people = new[] { state.SetBy, ticket?.Assignee }.OfType<string>().Where(p => p.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        await notifier.NotifyAsync(new FollowUpNotice("follow-up-due", number, ticket?.CustomerId, people, NotifySupervisors: false,
            Cause: $"follow-up:{Number}:{state.SetAt.UtcTicks}"), cancellationToken);
        var fired = state with { FiredAt = now, Reopened = reopened };
        await SaveAsync(fired, cancellationToken);
        await UnregisterAsync();
    }

    private async Task SaveAsync(TicketFollowUp next, CancellationToken cancellationToken)
    {
        try
        {
            await documents.PutAsync(RoutingKinds.TicketFollowUp, DocumentId, RoutingJson.Write(next), cancellationToken);
        }
        catch
        {
            // Whether it was stored is unknown: the next call reads the store again.
            _loaded = false;
            throw;
        }
        _state = next;
    }

    private async Task UnregisterAsync()
    {
        if (await this.GetReminder(ReminderName) is { } reminder)
            await this.UnregisterReminder(reminder);
    }

    private async Task<TicketFollowUp?> LoadAsync(CancellationToken cancellationToken)
    {
        if (_loaded)
            return _state;
        _state = await documents.GetAsync(RoutingKinds.TicketFollowUp, DocumentId, cancellationToken) is { } json ? RoutingJson.Read<TicketFollowUp>(json) : null;
        _loaded = true;
        return _state;
    }
}
