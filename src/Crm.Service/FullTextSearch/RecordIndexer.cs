using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Search;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.FullTextSearch;

/// <summary>
/// Keeps the console's records index (tickets, messages, customers; keyed <see cref="SearchExtensions.RecordsIndex"/>)
/// in step with the store through the change feed, like <see cref="KnowledgeBase.ArticleIndexer"/> does for articles:
/// each named ticket, message or customer is re-read and upserted, or deleted from the index when its row is gone (a
/// withdrawn ticket, a merged customer). An identity change re-indexes its customer (the customer's document holds
/// its email addresses and phone numbers). The index commits before this returns and the feed moves the cursor
/// ("search-records:{index identity}") only after that, so a crash in between hands the same changes again.
/// </summary>
public sealed class RecordIndexer(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer,
    [FromKeyedServices(SearchExtensions.RecordsIndex)] ISearchIndex index, ChangeConsumerGates gates,
    Microsoft.Extensions.Options.IOptions<ChangeFeedOptions> feedOptions) : IChangeConsumer
{
    public const string NamePrefix = "search-records:";
    /// <summary>The most of a message's text that is indexed (a pasted log must not make a 10 MB document).</summary>
    public const int MaxBodyLength = 100_000;
    private readonly TaskCompletionSource _checked = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Name => NamePrefix + index.Identity;

    public ISearchIndex Index => index;

    /// <summary>Released by <see cref="RecordReindexService"/> once it has decided at start whether a rebuild is needed.</summary>
    internal void StartChecked() => _checked.TrySetResult();

    /// <summary>Completes once the start-up check ran (and any rebuild it owed was started).</summary>
    internal Task StartCheckedTask => _checked.Task;

    public static bool Handles(string entity) =>
        entity is ChangeEntities.Ticket or ChangeEntities.Message or ChangeEntities.Customer or ChangeEntities.Identity;

    /// <summary>Changes after the saved cursor were pruned before this index got them (review LE1): rebuilt from the store.</summary>
    public async Task<bool> ResetAsync(CancellationToken cancellationToken)
    {
        await _checked.Task.WaitAsync(cancellationToken);
        await gates.RebuildAsync(Name, cancellationToken);
        return true;
    }

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        await _checked.Task.WaitAsync(cancellationToken);
        var relevant = changes.Where(c => Handles(c.Entity)).ToList();
        if (changes.Count < feedOptions.Value.BatchSize)
            _ = index.OptimizeAsync(CancellationToken.None);
        if (relevant.Count == 0)
            return;
        IReadOnlyList<string> Ids(string entity) => [.. relevant.Where(c => c.Entity == entity).Select(c => c.EntityId).Distinct(StringComparer.Ordinal)];
        var tickets = Ids(ChangeEntities.Ticket).Select(id => long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : (long?)null)
            .OfType<long>().ToList();
        var messages = Ids(ChangeEntities.Message).Select(id => Guid.TryParse(id, out var g) ? g : (Guid?)null).OfType<Guid>().ToList();
        var customers = Ids(ChangeEntities.Customer).Select(id => Guid.TryParse(id, out var g) ? g : (Guid?)null).OfType<Guid>().ToHashSet();
        var identities = Ids(ChangeEntities.Identity);
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            foreach (var chunk in identities.Chunk(500))
                customers.UnionWith(await db.Identities.AsNoTracking().Where(i => chunk.Contains(i.Key)).Select(i => i.CustomerId).ToListAsync(cancellationToken));
            // A message's document carries its ticket's team (and number): a ticket moved to another team re-indexes its
            // messages too, or a stale team would keep them matching (and counted) for the old team's agents. Only
            // then: a status, assignee or SLA update, or each new message, re-indexing every message of the ticket
            // made the cost grow with the square of the ticket's length (review KW6).
            var withMessages = new HashSet<Guid>(messages);
            foreach (var chunk in (await TicketsWithMovedMessagesAsync(db, tickets, cancellationToken)).Chunk(500))
                withMessages.UnionWith(await db.Messages.AsNoTracking().Where(m => chunk.Contains(m.TicketNumber)).Select(m => m.Id).ToListAsync(cancellationToken));
            messages = [.. withMessages];
        }
        await SyncAsync(tickets, messages, [.. customers], cancellationToken);
        var applied = relevant.Max(c => c.Sequence);
        await index.MarkAppliedAsync(applied, cancellationToken);
        await gates.RecordAppliedAsync(Name, applied, cancellationToken);
    }

    /// <summary>Of these changed tickets, the ones whose messages' documents may be stale: the ticket's indexed team
    /// differs from the store's, or the index cannot say (no document yet, an engine or document without a recorded
    /// team). A ticket merged away names its target: the target now holds the moved messages, which have no change
    /// rows of their own. The ticket's document is written in a separate write after its messages' (<see cref="SyncAsync"/>),
    /// so a write cut short or partly refused leaves the old team on the ticket and the next hand-over re-indexes the
    /// messages again.</summary>
    private async Task<List<long>> TicketsWithMovedMessagesAsync(CrmDbContext db, IReadOnlyList<long> tickets, CancellationToken cancellationToken)
    {
        var rows = new List<(long Number, string? Team, long? MergedInto)>();
        foreach (var chunk in tickets.Chunk(500))
            rows.AddRange((await db.Tickets.AsNoTracking().Where(t => chunk.Contains(t.Number)).Select(t => new { t.Number, t.Team, t.MergedInto }).ToListAsync(cancellationToken))
                .Select(t => (t.Number, t.Team, t.MergedInto)));
        var indexed = await index.IndexedTeamsAsync([.. rows.Select(r => TicketId(r.Number))], cancellationToken);
        var result = new HashSet<long>();
        foreach (var row in rows)
        {
            if (row.MergedInto is { } target)
                result.Add(target);
            if (indexed is null || !indexed.TryGetValue(TicketId(row.Number), out var team) || team != (row.Team ?? ""))
                result.Add(row.Number);
        }
        return [.. result];
    }

    /// <summary>Makes the index hold exactly the store's current state of these records.</summary>
    internal async Task SyncAsync(IReadOnlyList<long> tickets, IReadOnlyList<Guid> messages, IReadOnlyList<Guid> customers, CancellationToken cancellationToken)
    {
        var upserts = new List<SearchDocument>();
        var deletes = new List<string>();
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            foreach (var chunk in tickets.Chunk(500))
            {
                var found = await db.Tickets.AsNoTracking().Where(t => chunk.Contains(t.Number)).ToDictionaryAsync(t => t.Number, cancellationToken);
                foreach (var number in chunk)
                {
                    if (found.TryGetValue(number, out var ticket))
                        upserts.Add(ToDocument(ticket));
                    else
                        deletes.Add(TicketId(number));
                }
            }
            foreach (var chunk in messages.Chunk(500))
            {
                var found = await MessagesWithTeamsAsync(db.Messages.AsNoTracking().Where(m => chunk.Contains(m.Id)), db, cancellationToken);
                foreach (var id in chunk)
                {
                    if (found.FirstOrDefault(m => m.Message.Id == id) is { Message: not null } row)
                        upserts.Add(ToDocument(row.Message, row.Team));
                    else
                        deletes.Add(MessageId(id));
                }
            }
            foreach (var chunk in customers.Chunk(500))
            {
                var found = await CustomersWithIdentitiesAsync(db.Customers.AsNoTracking().Where(c => chunk.Contains(c.Id)), db, cancellationToken);
                foreach (var id in chunk)
                {
                    // A merged customer lives on in the one it was merged into: only that one is found.
                    if (found.FirstOrDefault(c => c.Customer.Id == id) is { Customer.MergedInto: null } row)
                        upserts.Add(ToDocument(row.Customer, row.Identities));
                    else
                        deletes.Add(CustomerId(id));
                }
            }
        }
        await index.DeleteAsync(deletes, cancellationToken);
        // Tickets last, in a write of their own: a ticket's indexed team says its messages carry it too
        // (TicketsWithMovedMessagesAsync). Order inside one Elasticsearch _bulk is no guarantee: each item succeeds or
        // fails alone (a 429 on one shard), so a failed message item next to a written ticket would leave the message
        // under the old team for good (review KB1). The tickets are written only once the rest has been.
        await index.UpsertAsync([.. upserts.Where(d => d.Kind != SearchKinds.Ticket)], cancellationToken);
        await index.UpsertAsync([.. upserts.Where(d => d.Kind == SearchKinds.Ticket)], cancellationToken);
    }

    internal static async Task<List<(MessageRecord Message, string? Team)>> MessagesWithTeamsAsync(IQueryable<MessageRecord> messages, CrmDbContext db, CancellationToken cancellationToken)
    {
        var rows = await messages.ToListAsync(cancellationToken);
        var numbers = rows.Select(m => m.TicketNumber).Distinct().ToList();
        var teams = await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number)).Select(t => new { t.Number, t.Team }).ToDictionaryAsync(t => t.Number, t => t.Team, cancellationToken);
        return [.. rows.Select(m => (m, teams.GetValueOrDefault(m.TicketNumber)))];
    }

    internal static async Task<List<(CustomerRecord Customer, IReadOnlyList<string> Identities)>> CustomersWithIdentitiesAsync(IQueryable<CustomerRecord> customers, CrmDbContext db, CancellationToken cancellationToken)
    {
        var rows = await customers.ToListAsync(cancellationToken);
        var ids = rows.Select(c => c.Id).ToList();
        var identities = (await db.Identities.AsNoTracking().Where(i => ids.Contains(i.CustomerId)).Select(i => new { i.CustomerId, i.Value }).ToListAsync(cancellationToken))
            .ToLookup(i => i.CustomerId, i => i.Value);
        return [.. rows.Select(c => (c, (IReadOnlyList<string>)[.. identities[c.Id].Take(50)]))];
    }

    public static string TicketId(long number) => SearchKinds.Ticket + ":" + number.ToString(CultureInfo.InvariantCulture);

    public static string MessageId(Guid id) => SearchKinds.Message + ":" + id.ToString("D");

    public static string CustomerId(Guid id) => SearchKinds.Customer + ":" + id.ToString("D");

    /// <summary>A ticket: its number and subject as the title (so "#123" and "123" find it), its tags as the body.</summary>
    public static SearchDocument ToDocument(TicketRecord ticket)
    {
        var number = ticket.Number.ToString(CultureInfo.InvariantCulture);
        var title = $"#{number} {ticket.Subject}";
        var body = string.Join(' ', ticket.Tags);
        return new SearchDocument(TicketId(ticket.Number), SearchLanguages.Detect(ticket.Subject), title, body, "internal",
            ticket.Status.ToString().ToLowerInvariant(), number, [], ticket.Tags, ticket.UpdatedAt)
        { Kind = SearchKinds.Ticket, Team = ticket.Team };
    }

    /// <summary>A message (notes too: agents search them) under its ticket's team, so a restricted team's messages
    /// are filtered like its tickets.</summary>
    public static SearchDocument ToDocument(MessageRecord message, string? team)
    {
        var text = message.Text ?? (message.Html is { } html ? System.Net.WebUtility.HtmlDecode(System.Text.RegularExpressions.Regex.Replace(html, "<[^>]*>", " ")) : "");
        if (text.Length > MaxBodyLength)
            text = text[..MaxBodyLength];
        var subject = message.Subject ?? "";
        return new SearchDocument(MessageId(message.Id), SearchLanguages.Detect(subject + " " + (text.Length > 2000 ? text[..2000] : text)), subject, text, "internal",
            message.Direction.ToString().ToLowerInvariant(), message.TicketNumber.ToString(CultureInfo.InvariantCulture), [], [], message.CreatedAt)
        { Kind = SearchKinds.Message, Team = team };
    }

    /// <summary>A customer: the name as the title; organization, email addresses, phone numbers and tags as the body.</summary>
    public static SearchDocument ToDocument(CustomerRecord customer, IReadOnlyList<string> identities)
    {
        var title = customer.Name ?? identities.FirstOrDefault() ?? "";
        var body = string.Join(' ', new[] { customer.Organization }.Concat(identities).Concat(customer.Tags).Where(s => !string.IsNullOrEmpty(s)));
        return new SearchDocument(CustomerId(customer.Id), SearchLanguages.Detect(title + " " + body), title, body, "internal", "active", null, [], customer.Tags, customer.UpdatedAt)
        { Kind = SearchKinds.Customer };
    }
}
