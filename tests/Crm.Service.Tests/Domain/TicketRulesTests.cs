using Crm.Service.Contracts;
using Crm.Service.Grains;
using Crm.Service.Grains.Records;

namespace Crm.Service.Tests.Domain;

/// <summary>The ticket's rules as plain code: no silo, no store, no clock.</summary>
public sealed class TicketRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Window = TimeSpan.FromDays(7);

    private static TicketRecord Ticket(TicketStatus status, DateTimeOffset? resolvedAt = null) => new()
    {
        Number = 10001,
        Subject = "Order late",
        Status = status,
        ResolvedAt = resolvedAt,
        CustomerId = Guid.Parse("00000000-0000-0000-0000-00000000000a"),
        ConversationIds = [Guid.Parse("00000000-0000-0000-0000-0000000000c1")],
    };

    [Theory]
    [InlineData(TicketStatus.New, CustomerMessageEffect.Join)]
    [InlineData(TicketStatus.Open, CustomerMessageEffect.Join)]
    [InlineData(TicketStatus.Pending, CustomerMessageEffect.Reopen)]
    [InlineData(TicketStatus.OnHold, CustomerMessageEffect.Reopen)]
    [InlineData(TicketStatus.Closed, CustomerMessageEffect.FollowUp)]
    public void A_customer_message_acts_on_the_status(TicketStatus status, CustomerMessageEffect effect) =>
        Assert.Equal(effect, TicketRules.OnCustomerMessage(Ticket(status), Now, Window));

    [Fact]
    public void A_resolved_ticket_reopens_inside_the_window_and_follows_up_from_its_end()
    {
        Assert.Equal(CustomerMessageEffect.Reopen, TicketRules.OnCustomerMessage(Ticket(TicketStatus.Resolved, Now - Window + TimeSpan.FromSeconds(1)), Now, Window));
        Assert.Equal(CustomerMessageEffect.CloseThenFollowUp, TicketRules.OnCustomerMessage(Ticket(TicketStatus.Resolved, Now - Window), Now, Window));
        Assert.True(TicketRules.ReopenWindowPassed(Ticket(TicketStatus.Resolved, Now - Window), Now, Window));
        Assert.False(TicketRules.ReopenWindowPassed(Ticket(TicketStatus.Open, Now - Window * 2), Now, Window));
    }

    [Fact]
    public void Status_timestamps_follow_the_status()
    {
        var ticket = Ticket(TicketStatus.Open);
        TicketRules.ApplyStatus(ticket, TicketStatus.Resolved, Now);
        Assert.Equal(Now, ticket.ResolvedAt);
        TicketRules.ApplyStatus(ticket, TicketStatus.Closed, Now.AddDays(7));
        Assert.Equal(Now, ticket.ResolvedAt);
        Assert.Equal(Now.AddDays(7), ticket.ClosedAt);

        var reopened = Ticket(TicketStatus.Resolved, Now);
        TicketRules.ApplyStatus(reopened, TicketStatus.Open, Now.AddHours(1));
        Assert.Null(reopened.ResolvedAt);
        Assert.Null(reopened.ClosedAt);
    }

    [Fact]
    public void A_closed_ticket_refuses_any_other_status_and_undefined_values_are_refused()
    {
        var closed = Ticket(TicketStatus.Closed);
        TicketRules.EnsureStatusChangeAllowed(closed, TicketStatus.Closed);
        Assert.Equal(DomainErrorKind.Conflict, Assert.Throws<DomainException>(() => TicketRules.EnsureStatusChangeAllowed(closed, TicketStatus.Open)).Kind);
        var undefined = Assert.Throws<DomainException>(() => TicketRules.EnsureStatusChangeAllowed(Ticket(TicketStatus.Open), (TicketStatus)42));
        Assert.Equal(("status", DomainErrorKind.Invalid), (undefined.Field, undefined.Kind));
        var priority = Assert.Throws<DomainException>(() => TicketRules.ApplyChange(Ticket(TicketStatus.Open), new TicketChange { Priority = (TicketPriority)42 }, Now));
        Assert.Equal("priority", priority.Field);
    }

    [Fact]
    public void The_audit_diff_lists_each_changed_field_once_with_old_and_new()
    {
        var before = Ticket(TicketStatus.Open);
        var after = before.Copy();
        TicketRules.ApplyChange(after, new TicketChange { Status = TicketStatus.Pending, Tags = ["VIP", "billing"], Assignee = " ann ", Team = "" }, Now);

        Assert.Equal(
            [new FieldChange("status", "Open", "Pending"), new FieldChange("assignee", null, "ann"), new FieldChange("tags", "", "billing,vip")],
            TicketRules.Diff(before, after));
        Assert.Empty(TicketRules.Diff(before, before.Copy()));
    }

    [Fact]
    public void A_conversation_of_another_customer_never_joins()
    {
        var ticket = Ticket(TicketStatus.Open);
        var listed = ticket.ConversationIds[0];
        var stranger = Guid.Parse("00000000-0000-0000-0000-00000000000b");
        Assert.True(TicketRules.AcceptsConversation(ticket, listed, stranger));
        Assert.True(TicketRules.AcceptsConversation(ticket, Guid.NewGuid(), ticket.CustomerId));
        Assert.False(TicketRules.AcceptsConversation(ticket, Guid.NewGuid(), stranger));
    }

    [Fact]
    public void A_reply_fingerprint_changes_with_any_part_of_the_request()
    {
        var reply = new AgentReply { Actor = "a", Text = "Hello" };
        var fingerprint = TicketRules.ReplyFingerprint(10001, reply);
        Assert.Equal(fingerprint, TicketRules.ReplyFingerprint(10001, reply with { Actor = "someone else" }));
        Assert.NotEqual(fingerprint, TicketRules.ReplyFingerprint(10002, reply));
        Assert.NotEqual(fingerprint, TicketRules.ReplyFingerprint(10001, reply with { Text = "Hello!" }));
        Assert.NotEqual(fingerprint, TicketRules.ReplyFingerprint(10001, reply with { Html = "" }));
        Assert.NotEqual(fingerprint, TicketRules.ReplyFingerprint(10001, reply with { SetStatus = TicketStatus.Resolved }));
        Assert.NotEqual(fingerprint, TicketRules.ReplyFingerprint(10001, reply with { ConversationId = Guid.NewGuid() }));
    }

    [Theory]
    [InlineData(typeof(IMergeCoordinatorGrain), nameof(IMergeCoordinatorGrain.MergeTicketsAsync))]
    [InlineData(typeof(IMergeCoordinatorGrain), nameof(IMergeCoordinatorGrain.MergeCustomersAsync))]
    [InlineData(typeof(ICustomerGrain), nameof(ICustomerGrain.MergeFromAsync))]
    [InlineData(typeof(ITicketGrain), nameof(ITicketGrain.MergeIntoAsync))]
    public void Merges_outlast_the_default_call_timeout_so_the_coordinator_stays_serial(Type grain, string method)
    {
        var timeout = grain.GetMethod(method)!.GetCustomAttributes(typeof(Orleans.ResponseTimeoutAttribute), false).Cast<Orleans.ResponseTimeoutAttribute>().SingleOrDefault();
        Assert.NotNull(timeout);
        Assert.True(timeout.Timeout >= TimeSpan.FromMinutes(10), $"{grain.Name}.{method} times out after {timeout.Timeout}");
    }
}
