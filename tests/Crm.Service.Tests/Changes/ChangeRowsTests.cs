using Crm.Service.Contracts;
using Crm.Service.Grains;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Tests.Grains;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Changes;

/// <summary>What the store appends to the change feed for each kind of write, read back from the Changes table.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ChangeRowsTests(TestClusterFixture fixture)
{
    private ICrmStore Store => fixture.SiloServices.GetRequiredService<ICrmStore>();

    private IChangeFeed Feed => fixture.SiloServices.GetRequiredService<IChangeFeed>();

    /// <summary>"entity/id/kind" of every change after <paramref name="after"/> about one of <paramref name="ids"/>, sorted (the order
    /// within one commit means nothing). Other tests share the store, so only these ids count.</summary>
    private async Task<List<string>> ChangesAsync(long after, params object[] ids)
    {
        var keys = ids.Select(Key).ToList();
        var rows = await fixture.QueryAsync(db => db.Changes.Where(c => c.Sequence > after && keys.Contains(c.EntityId)).OrderBy(c => c.Sequence).ToListAsync());
        return [.. rows.Select(c => $"{c.Entity}/{c.EntityId}/{c.Kind}").Order(StringComparer.Ordinal)];
    }

    private static string Key(object id) => id switch
    {
        long number => number.ToString(System.Globalization.CultureInfo.InvariantCulture),
        Guid guid => guid.ToString("D"),
        _ => (string)id,
    };

    private static string C(string entity, object id, string kind) => $"{entity}/{Key(id)}/{kind}";

    private static List<string> Sorted(params string[] changes) => [.. changes.Order(StringComparer.Ordinal)];

    private static long NewTicketNumber() => Random.Shared.NextInt64(900_000_000, 999_999_999);

    private static TicketRecord Ticket(long number) => new() { Number = number, Subject = "feed", CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow };

    private static MessageRecord Message(long ticket) => new()
    {
        Id = Guid.CreateVersion7(),
        TicketNumber = ticket,
        Direction = MessageDirection.Inbound,
        Author = "test",
        Text = "feed",
        CreatedAt = DateTimeOffset.UtcNow,
    };

    [Fact]
    public async Task Each_row_write_appends_created_or_updated_for_its_entity()
    {
        var number = NewTicketNumber();
        var message = Message(number);
        var customer = new CustomerRecord { Id = Guid.CreateVersion7(), Name = "Feed", CreatedAt = DateTimeOffset.UtcNow };
        var identity = new IdentityRecord { Key = "phone:feed-" + Guid.NewGuid().ToString("N"), Value = "+1555", CustomerId = customer.Id };
        var conversation = new ConversationRecord
        {
            Id = Guid.CreateVersion7(), Key = "feed:" + Guid.NewGuid().ToString("N"), ChannelAccountId = "feed", ThreadKey = "t", CustomerId = customer.Id,
            CustomerIdentity = identity.Key, TicketNumber = number,
        };
        var channel = new ChannelAccountRecord { Id = "feed-" + Guid.NewGuid().ToString("N")[..8], Name = "feed" };
        object[] ids = [number, message.Id, customer.Id, identity.Key, conversation.Id, channel.Id];
        var start = await Feed.LastSequenceAsync();

        await Store.CommitAsync(new WriteSet().Insert(customer).Insert(identity).Insert(conversation).Insert(Ticket(number)).Insert(message).Insert(channel));
        var afterInserts = await Feed.LastSequenceAsync();
        await Store.CommitAsync(new WriteSet().Update(customer).Update(identity).Update(conversation, nameof(ConversationRecord.TicketNumber))
            .Update(Ticket(number), nameof(TicketRecord.UpdatedAt)).Update(message).Update(channel));

        Assert.Equal(Sorted(
            C("customer", customer.Id, "created"), C("identity", identity.Key, "created"), C("conversation", conversation.Id, "created"),
            C("ticket", number, "created"), C("message", message.Id, "created"), C("channel", channel.Id, "created"),
            C("customer", customer.Id, "updated"), C("identity", identity.Key, "updated"), C("conversation", conversation.Id, "updated"),
            C("ticket", number, "updated"), C("message", message.Id, "updated"), C("channel", channel.Id, "updated")), await ChangesAsync(start, ids));
        Assert.Equal(Sorted(
            C("customer", customer.Id, "updated"), C("identity", identity.Key, "updated"), C("conversation", conversation.Id, "updated"),
            C("ticket", number, "updated"), C("message", message.Id, "updated"), C("channel", channel.Id, "updated")), await ChangesAsync(afterInserts, ids));
    }

    [Fact]
    public async Task Moves_and_delivery_append_merged_updated_and_delivery_changes()
    {
        long from = NewTicketNumber(), to = NewTicketNumber();
        var message = Message(from);
        Guid fromCustomer = Guid.CreateVersion7(), toCustomer = Guid.CreateVersion7();
        await Store.CommitAsync(new WriteSet().Insert(Ticket(from)).Insert(Ticket(to)).Insert(message));
        object[] ids = [from, to, message.Id, fromCustomer, toCustomer];

        var start = await Feed.LastSequenceAsync();
        await Store.CommitAsync(new WriteSet().Add(new MoveTicketContent(from, to)));
        Assert.Equal(Sorted(C("ticket", from, "merged"), C("ticket", to, "updated")), await ChangesAsync(start, ids));

        start = await Feed.LastSequenceAsync();
        await Store.CommitAsync(new WriteSet().Add(new MoveMessage(message.Id, from)));
        Assert.Equal(Sorted(C("message", message.Id, "updated"), C("ticket", from, "updated")), await ChangesAsync(start, ids));

        start = await Feed.LastSequenceAsync();
        await Store.CommitAsync(new WriteSet().Add(new MoveCustomerConversations(fromCustomer, toCustomer)));
        Assert.Equal([C("customer", fromCustomer, "merged")], await ChangesAsync(start, ids));

        start = await Feed.LastSequenceAsync();
        await Store.CommitAsync(new WriteSet().Add(new SetDelivery(message.Id, DeliveryStatus.Sent, null, "ext-1", DateTimeOffset.UtcNow)));
        Assert.Equal([C("message", message.Id, "delivery")], await ChangesAsync(start, ids));
    }

    [Fact]
    public async Task Audit_attachments_raw_sources_and_outbox_rows_append_no_change()
    {
        var messageId = Guid.CreateVersion7();
        var start = await Feed.LastSequenceAsync();

        await Store.CommitAsync(new WriteSet()
            .Insert(new AuditRecord { Id = Guid.CreateVersion7(), EntityType = "ticket", EntityId = messageId.ToString("D"), Action = "test", Actor = "test" })
            .Insert(new AttachmentRecord { Id = Guid.CreateVersion7(), MessageId = messageId, FileName = "a.txt", ContentType = "text/plain", Sha256 = "00" })
            .Insert(new RawSourceRecord { MessageId = messageId, ContentType = "application/json", Content = [1] })
            .Insert(new OutboxRecord { Id = messageId, MessageId = messageId, ConversationKey = "k", ChannelAccountId = "feed" }));

        Assert.Empty(await fixture.QueryAsync(db => db.Changes.Where(c => c.Sequence > start && c.EntityId == messageId.ToString("D")).ToListAsync()));
        Assert.Empty(await fixture.QueryAsync(db => db.Changes.Where(c => c.Sequence > start && c.Entity != "ticket" && c.Entity != "message"
            && c.Entity != "conversation" && c.Entity != "customer" && c.Entity != "identity" && c.Entity != "channel").ToListAsync()));
    }

    [Fact]
    public async Task A_write_set_appends_one_change_per_entity_and_kind()
    {
        long number = NewTicketNumber(), other = NewTicketNumber();
        await Store.CommitAsync(new WriteSet().Insert(Ticket(number)).Insert(Ticket(other)));
        var message = Message(number);
        var start = await Feed.LastSequenceAsync();

        // The ticket is updated, moved into and has a message moved to it; the message's delivery changes twice.
        await Store.CommitAsync(new WriteSet().Insert(message).Update(Ticket(number))
            .Add(new MoveTicketContent(other, number)).Add(new MoveMessage(message.Id, number))
            .Add(new SetDelivery(message.Id, DeliveryStatus.Sent, null, null, DateTimeOffset.UtcNow))
            .Add(new SetDelivery(message.Id, DeliveryStatus.Delivered, null, null, DateTimeOffset.UtcNow)));

        Assert.Equal(
            Sorted(C("message", message.Id, "created"), C("ticket", number, "updated"), C("ticket", other, "merged"), C("message", message.Id, "updated"),
                C("message", message.Id, "delivery")),
            await ChangesAsync(start, number, other, message.Id));
    }

    [Fact]
    public async Task A_write_set_that_fails_on_a_duplicate_key_appends_no_change()
    {
        var number = NewTicketNumber();
        var taken = Message(number);
        taken.ChannelAccountId = "feed-dup";
        taken.ExternalId = "taken-" + Guid.NewGuid().ToString("N");
        await Store.CommitAsync(new WriteSet().Insert(taken).Insert(Ticket(number)));
        var start = await Feed.LastSequenceAsync();

        // Alone (one transaction that rolls back) and within a group commit (its savepoint rolls back, the others commit).
        var duplicate = Message(number);
        duplicate.ChannelAccountId = taken.ChannelAccountId;
        duplicate.ExternalId = taken.ExternalId;
        await Assert.ThrowsAsync<DuplicateKeyException>(() => Store.CommitAsync(new WriteSet().Insert(duplicate).Update(Ticket(number))));
        var others = Enumerable.Range(0, 20).Select(_ => Message(NewTicketNumber())).ToList();
        var grouped = others.Select(m => Store.CommitAsync(new WriteSet().Insert(m))).ToList();
        var secondDuplicate = Message(number);
        secondDuplicate.ChannelAccountId = taken.ChannelAccountId;
        secondDuplicate.ExternalId = taken.ExternalId;
        var failing = Store.CommitAsync(new WriteSet().Insert(secondDuplicate).Update(Ticket(number)));
        await Task.WhenAll(grouped);
        await Assert.ThrowsAsync<DuplicateKeyException>(() => failing);

        Assert.Empty(await ChangesAsync(start, number, duplicate.Id, secondDuplicate.Id));
        Assert.Equal(Sorted([.. others.Select(m => C("message", m.Id, "created"))]),
            await ChangesAsync(start, [.. others.Select(m => (object)m.Id)]));
    }

    [Fact]
    public async Task Ingest_reply_receipt_and_merge_append_their_changes()
    {
        var scenario = new GrainScenario(fixture.Grains);
        var start = await Feed.LastSequenceAsync();
        await scenario.CreateChannelAsync();
        Assert.Equal([C("channel", scenario.Channel, "created")], await ChangesAsync(start, scenario.Channel));

        var phone = GrainScenario.NewPhone();
        var identity = GrainKeys.Identity(IdentityKind.Phone, phone, scenario.Channel);
        start = await Feed.LastSequenceAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("feed-1", phone));
        Assert.Equal(Sorted(
            C("customer", first.CustomerId, "created"), C("identity", identity, "created"), C("conversation", first.ConversationId, "created"),
            C("ticket", first.TicketNumber, "created"), C("message", first.MessageId, "created")),
            await ChangesAsync(start, first.MessageId, first.ConversationId, first.TicketNumber, first.CustomerId, identity));

        // A later message on the conversation moves the ticket's activity time.
        start = await Feed.LastSequenceAsync();
        var next = await scenario.ReceiveAsync(scenario.Message("feed-1b", phone));
        Assert.Equal(Sorted(C("message", next.MessageId, "created"), C("ticket", first.TicketNumber, "updated")),
            await ChangesAsync(start, next.MessageId, first.ConversationId, first.TicketNumber, first.CustomerId, identity));

        // A redelivered message is answered from the store and changes nothing.
        start = await Feed.LastSequenceAsync();
        Assert.True((await scenario.ReceiveAsync(scenario.Message("feed-1", phone))).Duplicate);
        Assert.Empty(await ChangesAsync(start, first.MessageId));

        var ticket = fixture.Grains.GetGrain<ITicketGrain>(first.TicketNumber);
        start = await Feed.LastSequenceAsync();
        var reply = await ticket.ReplyAsync(new AgentReply { Actor = "agent:ann", Text = "on it" });
        // The outbox may already have reported a delivery attempt as well.
        var replied = await ChangesAsync(start, reply.Id, first.TicketNumber);
        Assert.Single(replied, C("message", reply.Id, "created"));
        Assert.Single(replied, C("ticket", first.TicketNumber, "updated"));

        // The outbox reports the outcome of its attempt (this cluster has no API connector, so the reply fails at
        // once; failed is final, so a receipt cannot be used here): a delivery change.
        var beforeReply = start;
        await Eventually.WaitForAsync(() => ChangesAsync(beforeReply, reply.Id), changes => changes.Contains(C("message", reply.Id, "delivery")),
            what: "a delivery change for the reply");

        var second = await scenario.ReceiveAsync(scenario.Message("feed-2", phone, thread: "other-thread"));
        Assert.NotEqual(first.TicketNumber, second.TicketNumber);
        start = await Feed.LastSequenceAsync();
        await fixture.Grains.GetGrain<ITicketGrain>(second.TicketNumber).MergeIntoAsync(first.TicketNumber, "agent:ann");
        var merged = await ChangesAsync(start, first.TicketNumber, second.TicketNumber);
        Assert.Contains(C("ticket", second.TicketNumber, "merged"), merged);
        Assert.Contains(C("ticket", first.TicketNumber, "updated"), merged);
        Assert.Contains(C("ticket", second.TicketNumber, "updated"), merged);
    }
}
