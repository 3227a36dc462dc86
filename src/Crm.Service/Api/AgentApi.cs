using System.Security.Claims;
using Crm.Connectors.Api.Http;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Api;

/// <summary>The agent REST API: queues are plain indexed queries on the store; every change goes through the ticket
/// or customer grain, which is the single writer of its entity and records who changed what.</summary>
public static class AgentApi
{
    private const int MaxPageSize = 200;

    public static IEndpointRouteBuilder MapAgentApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1").RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        api.MapGet("/tickets", ListTicketsAsync);
        api.MapGet("/tickets/{number:long}", GetTicketAsync);
        api.MapPost("/tickets/{number:long}/reply", ReplyAsync);
        api.MapPost("/tickets/{number:long}/notes", AddNoteAsync);
        api.MapPatch("/tickets/{number:long}", ChangeTicketAsync);
        api.MapPost("/tickets/{number:long}/merge", MergeTicketAsync);
        api.MapPost("/tickets/{number:long}/split", SplitTicketAsync);
        api.MapGet("/customers/{id:guid}", GetCustomerAsync);
        api.MapPatch("/customers/{id:guid}", ChangeCustomerAsync);
        api.MapPost("/customers/{id:guid}/merge", MergeCustomerAsync);
        api.MapPost("/customers/{id:guid}/identities/detach", DetachIdentityAsync);
        api.MapGet("/messages/{id:guid}/raw", GetRawSourceAsync);
        api.MapGet("/attachments/{id:guid}", GetAttachmentAsync);
        return endpoints;
    }

    internal static async Task<Results<Ok<TicketPage>, ProblemHttpResult>> ListTicketsAsync(
        IDbContextFactory<CrmDbContext> contexts, string? status, string? assignee, string? team, Guid? customer,
        int? page, int? pageSize, CancellationToken cancellationToken)
    {
        var size = pageSize ?? 50;
        if (size is < 1 or > MaxPageSize)
            return Problems.Invalid("pageSize", $"pageSize must be between 1 and {MaxPageSize}.");
        var number = page ?? 1;
        if (number < 1)
            return Problems.Invalid("page", "page starts at 1.");
        TicketStatus? wanted = null;
        if (status is not null)
        {
            if (!Enum.TryParse<TicketStatus>(status, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
                return Problems.Invalid("status", $"status must be one of: {string.Join(", ", Enum.GetNames<TicketStatus>().Select(JsonName))}.");
            wanted = parsed;
        }
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var query = db.Tickets.AsNoTracking();
        if (wanted is { } s)
            query = query.Where(t => t.Status == s);
        if (assignee is not null)
            query = assignee.Length == 0 ? query.Where(t => t.Assignee == null) : query.Where(t => t.Assignee == assignee);
        if (team is not null)
            query = team.Length == 0 ? query.Where(t => t.Team == null) : query.Where(t => t.Team == team);
        if (customer is { } c)
            query = query.Where(t => t.CustomerId == c);
        // One row more than the page tells whether there is a next page without counting the whole queue.
        var rows = await query.OrderByDescending(t => t.UpdatedAt).ThenByDescending(t => t.Number)
            .Skip((number - 1) * size).Take(size + 1).ToListAsync(cancellationToken);
        return TypedResults.Ok(new TicketPage(rows.Take(size).Select(t => t.ToSnapshot()).ToList(), number, size, rows.Count > size));
    }

    private static string JsonName(string name) => char.ToLowerInvariant(name[0]) + name[1..];

    internal static async Task<Results<Ok<TicketDetails>, ProblemHttpResult>> GetTicketAsync(
        long number, IGrainFactory grains, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        var ticket = await grains.GetGrain<ITicketGrain>(number).GetAsync();
        if (ticket is null)
            return Problems.Field(404, "Not found", $"No ticket #{number}.", "number");
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var messages = await db.Messages.AsNoTracking().Where(m => m.TicketNumber == number)
            .OrderBy(m => m.CreatedAt).ThenBy(m => m.Id).ToListAsync(cancellationToken);
        var ids = messages.Where(m => m.AttachmentCount > 0).Select(m => m.Id).ToList();
        var attachments = (await db.Attachments.AsNoTracking().Where(a => ids.Contains(a.MessageId)).ToListAsync(cancellationToken))
            .ToLookup(a => a.MessageId);
        var key = number.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var history = await db.Audit.AsNoTracking().Where(a => a.EntityType == "ticket" && a.EntityId == key)
            .OrderBy(a => a.At).ThenBy(a => a.Id)
            .Select(a => new AuditEntry(a.At, a.Actor, a.Action, a.Field, a.OldValue, a.NewValue)).ToListAsync(cancellationToken);
        return TypedResults.Ok(new TicketDetails(ticket, messages.Select(m => m.ToSnapshot([.. attachments[m.Id]])).ToList(), history));
    }

    internal static async Task<Created<MessageSnapshot>> ReplyAsync(
        long number, ReplyRequest request, HttpContext http, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken)
    {
        var requestId = http.Request.Headers["Idempotency-Key"].FirstOrDefault();
        var message = await grains.GetGrain<ITicketGrain>(number).ReplyAsync(new AgentReply
        {
            Actor = user.Actor(),
            Text = request.Text ?? "",
            Html = request.Html,
            ConversationId = request.ConversationId,
            RequestId = requestId is { Length: > 0 and <= 200 } ? requestId : null,
            SetStatus = request.Status,
        }, cancellationToken);
        return TypedResults.Created($"/api/v1/tickets/{message.TicketNumber}", message);
    }

    internal static async Task<Created<MessageSnapshot>> AddNoteAsync(
        long number, NoteRequest request, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken)
    {
        var note = await grains.GetGrain<ITicketGrain>(number).AddNoteAsync(user.Actor(), request.Text ?? "", cancellationToken);
        return TypedResults.Created($"/api/v1/tickets/{number}", note);
    }

    internal static async Task<Ok<TicketSnapshot>> ChangeTicketAsync(
        long number, TicketChange change, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken) =>
        TypedResults.Ok(await grains.GetGrain<ITicketGrain>(number).ChangeAsync(change, user.Actor(), cancellationToken));

    internal static async Task<Results<Ok<TicketSnapshot>, ProblemHttpResult>> MergeTicketAsync(
        long number, MergeTicketRequest request, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (request.Into is not { } into)
            return Problems.Invalid("into", "into is required: the number of the ticket to merge this one into.");
        await grains.GetGrain<ITicketGrain>(number).MergeIntoAsync(into, user.Actor(), cancellationToken);
        return TypedResults.Ok((await grains.GetGrain<ITicketGrain>(into).GetAsync())!);
    }

    internal static async Task<Results<Created<TicketSnapshot>, ProblemHttpResult>> SplitTicketAsync(
        long number, SplitTicketRequest request, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (request.MessageId is not { } messageId)
            return Problems.Invalid("messageId", "messageId is required: the message to move into a new ticket.");
        var created = await grains.GetGrain<ITicketGrain>(number).SplitAsync(messageId, user.Actor(), cancellationToken);
        return TypedResults.Created($"/api/v1/tickets/{created.Number}", created);
    }

    internal static async Task<Results<Ok<CustomerSnapshot>, ProblemHttpResult>> GetCustomerAsync(Guid id, IGrainFactory grains) =>
        await grains.GetGrain<ICustomerGrain>(id).GetAsync() is { } customer
            ? TypedResults.Ok(customer)
            : Problems.Field(404, "Not found", $"No customer {id}.", "id");

    internal static async Task<Ok<CustomerSnapshot>> ChangeCustomerAsync(
        Guid id, CustomerProfileChange change, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken) =>
        TypedResults.Ok(await grains.GetGrain<ICustomerGrain>(id).UpdateProfileAsync(change, user.Actor(), cancellationToken));

    internal static async Task<Results<Ok<CustomerSnapshot>, ProblemHttpResult>> MergeCustomerAsync(
        Guid id, MergeCustomerRequest request, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (request.SourceCustomerId is not { } source)
            return Problems.Invalid("sourceCustomerId", "sourceCustomerId is required: the customer to merge into this one.");
        return TypedResults.Ok(await grains.GetGrain<ICustomerGrain>(id).MergeFromAsync(source, user.Actor(), cancellationToken));
    }

    internal static async Task<Results<Ok<CustomerSnapshot>, ProblemHttpResult>> DetachIdentityAsync(
        Guid id, DetachIdentityRequest request, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(request.Identity))
            return Problems.Invalid("identity", "identity is required: the identity key to detach, e.g. \"email:alice@example.com\".");
        var identity = grains.GetGrain<IIdentityGrain>(request.Identity);
        if (await identity.GetCustomerAsync() != id)
            return Problems.Field(404, "Not found", $"Customer {id} has no identity '{request.Identity}'.", "identity");
        var created = await identity.DetachAsync(user.Actor(), cancellationToken);
        return TypedResults.Ok((await grains.GetGrain<ICustomerGrain>(created).GetAsync())!);
    }

    internal static async Task<IResult> GetRawSourceAsync(Guid id, IDbContextFactory<CrmDbContext> contexts, IBlobStore blobs, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var raw = await db.RawSources.AsNoTracking().FirstOrDefaultAsync(r => r.MessageId == id, cancellationToken);
        if (raw is null)
            return Problems.Field(404, "Not found", $"No raw source for message {id}.", "id");
        // Served as an opaque download: the raw source is untrusted and must never render in the console's origin.
        var stream = raw.Content is { } inline ? new MemoryStream(inline) : raw.BlobSha256 is { } hash ? blobs.Open(hash) : null;
        if (stream is null)
            return Problems.Field(404, "Not found", $"The raw source of message {id} is missing from the blob store.", "id");
        return TypedResults.File(stream, "application/octet-stream", $"message-{id}.raw");
    }

    internal static async Task<IResult> GetAttachmentAsync(Guid id, HttpContext http, IDbContextFactory<CrmDbContext> contexts, IBlobStore blobs, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var attachment = await db.Attachments.AsNoTracking().FirstOrDefaultAsync(a => a.Id == id, cancellationToken);
        if (attachment is null || blobs.Open(attachment.Sha256) is not { } stream)
            return Problems.Field(404, "Not found", $"No attachment {id}.", "id");
        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Response.Headers.ContentSecurityPolicy = "sandbox";
        return TypedResults.File(stream, attachment.ContentType, attachment.FileName);
    }
}
