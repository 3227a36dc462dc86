using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Orleans.Core.Internal;

namespace Crm.Service.Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class IngestGrainTests(TestClusterFixture fixture)
{
    private Task<T> QueryAsync<T>(Func<CrmDbContext, Task<T>> query) => fixture.QueryAsync(query);

    [Fact]
    public async Task A_hundred_parallel_first_messages_from_one_new_address_make_one_customer_one_conversation_one_ticket()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => scenario.ReceiveAsync(scenario.Message($"m-{i}", phone, $"message {i}"))));

        Assert.Single(results.Select(r => r.CustomerId).Distinct());
        Assert.Single(results.Select(r => r.ConversationId).Distinct());
        Assert.Single(results.Select(r => r.TicketNumber).Distinct());
        var identity = GrainKeys.Identity(IdentityKind.Phone, phone, scenario.Channel);
        Assert.Equal(1, await QueryAsync(db => db.Identities.CountAsync(i => i.Key == identity)));
        Assert.Equal(1, await QueryAsync(db => db.Customers.CountAsync(c => c.Id == results[0].CustomerId)));
        Assert.Equal(1, await QueryAsync(db => db.Conversations.CountAsync(c => c.ChannelAccountId == scenario.Channel)));
        Assert.Equal(1, await QueryAsync(db => db.Tickets.CountAsync(t => t.CustomerId == results[0].CustomerId)));
        Assert.Equal(100, await QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == scenario.Channel)));
    }

    [Fact]
    public async Task The_same_message_delivered_fifty_times_is_stored_once()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var message = scenario.Message("redelivered", GrainScenario.NewPhone());

        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => scenario.ReceiveAsync(message)));

        Assert.Single(results.Select(r => r.MessageId).Distinct());
        Assert.Equal(1, results.Count(r => !r.Duplicate));
        Assert.Equal(1, await QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == scenario.Channel && m.ExternalId == "redelivered")));
        Assert.Equal(1, await QueryAsync(db => db.RawSources.CountAsync(r => r.MessageId == results[0].MessageId)));
    }

    [Fact]
    public async Task A_redelivery_after_the_grain_was_deactivated_is_still_recognised_by_the_store()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var message = scenario.Message("x-1", GrainScenario.NewPhone());
        var first = await scenario.ReceiveAsync(message);
        var conversation = fixture.Grains.GetGrain<IConversationGrain>(GrainKeys.Conversation(message.ChannelAccountId, message.ThreadKey));
        var before = await fixture.Probe(conversation).GetActivationIdAsync();

        await conversation.AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        // A new activation has an empty in-memory dedupe cache: only the store can recognise the redelivery now.
        var after = await Eventually.WaitForAsync(() => fixture.Probe(conversation).GetActivationIdAsync(), id => id != before,
            TimeSpan.FromSeconds(30), "a new activation of the conversation");
        var again = await scenario.ReceiveAsync(message);

        Assert.NotEqual(before, after);
        Assert.Equal(after, await fixture.Probe(conversation).GetActivationIdAsync());
        Assert.True(again.Duplicate);
        Assert.Equal(first.MessageId, again.MessageId);
        Assert.Equal(first.TicketNumber, again.TicketNumber);
        Assert.Equal(1, await QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == scenario.Channel)));
        Assert.Equal(1, await QueryAsync(db => db.RawSources.CountAsync(r => r.MessageId == first.MessageId)));
    }

    [Fact]
    public async Task The_same_message_id_on_another_thread_of_the_channel_is_recognised_by_the_store()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("x-1", phone));
        // Another thread is another conversation grain, with no memory of the first message.
        var again = await scenario.ReceiveAsync(scenario.Message("x-1", phone, thread: "other-thread"));
        Assert.True(again.Duplicate);
        Assert.Equal(first.MessageId, again.MessageId);
        Assert.Equal(1, await QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == scenario.Channel)));
    }

    [Fact]
    public async Task Attachments_are_stored_by_content_with_a_sniffed_type_and_a_safe_name()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        byte[] png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3];
        var message = scenario.Message("att-1", GrainScenario.NewPhone()) with
        {
            Attachments = [new InboundAttachment("../../evil.exe", "application/x-msdownload", png), new InboundAttachment("copy.png", "image/png", png)],
        };
        var result = await scenario.ReceiveAsync(message);
        var attachments = await QueryAsync(db => db.Attachments.Where(a => a.MessageId == result.MessageId).OrderBy(a => a.FileName).ToListAsync());
        Assert.Equal(["copy.png", "evil.exe"], attachments.Select(a => a.FileName));
        Assert.All(attachments, a => Assert.Equal("image/png", a.ContentType));
        Assert.Single(attachments.Select(a => a.Sha256).Distinct());
        Assert.Equal("application/x-msdownload", attachments[1].DeclaredContentType);
    }

    [Fact]
    public async Task An_attachment_over_the_limit_is_refused_and_nothing_is_stored()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var message = scenario.Message("big-1", GrainScenario.NewPhone()) with
        {
            Attachments = [new InboundAttachment("big.bin", null, new byte[26 * 1024 * 1024])],
        };
        var refusal = await Assert.ThrowsAsync<DomainException>(() => scenario.ReceiveAsync(message));
        Assert.Equal(DomainErrorKind.TooLarge, refusal.Kind);
        Assert.Equal(0, await QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == scenario.Channel)));
    }

    [Fact]
    public async Task Html_is_sanitized_and_a_plain_text_version_is_kept()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var message = scenario.Message("html-1", GrainScenario.NewPhone()) with
        {
            Text = null,
            Html = "<p onclick=\"steal()\">Hi <b>there</b><script>alert(1)</script></p><img src=\"https://tracker.example/p.gif\">",
        };
        var result = await scenario.ReceiveAsync(message);
        var stored = await QueryAsync(db => db.Messages.SingleAsync(m => m.Id == result.MessageId));
        Assert.DoesNotContain("script", stored.Html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("onclick", stored.Html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(" src=", stored.Html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("data-remote-src=\"https://tracker.example/p.gif\"", stored.Html, StringComparison.Ordinal);
        Assert.Equal("Hi there", stored.Text);
    }
}
