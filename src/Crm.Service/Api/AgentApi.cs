using System.Security.Claims;
using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Crm.Service.Grains;

namespace Crm.Service.Api;

/// <summary>The agent REST API: reads go to the store through the query services (keyset-paged, never through grains);
/// every change goes through the ticket or customer grain, which is the single writer of its entity and records who
/// changed what. Bodies are the request records of Requests.cs, responses the query services' views.</summary>
public static class AgentApi
{
    private const int MaxPageSize = 200;
    private const int DefaultPageSize = 50;

    public static IEndpointRouteBuilder MapAgentApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1").RequireAuthorization(ApiKeyAuthenticationExtensions.AgentPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy)
            .AddEndpointFilter<RequestLimitsFilter>();
        api.MapGet("/tickets", ListTicketsAsync);
        api.MapGet("/tickets/{number:long}", GetTicketAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapGet("/tickets/{number:long}/timeline", GetTimelineAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapGet("/tickets/{number:long}/history", GetHistoryAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapPost("/tickets/{number:long}/reply", ReplyAsync).AddEndpointFilter<TicketReachFilter>();
        // The same route with files: routing picks this one for a multipart/form-data body (its Accepts metadata).
        api.MapPost("/tickets/{number:long}/reply", ReplyWithFilesAsync).Accepts<ReplyRequest>("multipart/form-data").AddEndpointFilter<TicketReachFilter>().LimitUploads();
        api.MapPost("/tickets/{number:long}/notes", AddNoteAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapPatch("/tickets/{number:long}", ChangeTicketAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapPost("/tickets/{number:long}/merge", MergeTicketAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapPost("/tickets/{number:long}/split", SplitTicketAsync).AddEndpointFilter<TicketReachFilter>();
        api.MapGet("/customers/{id:guid}", GetCustomerAsync);
        api.MapGet("/customers/{id:guid}/tickets", GetCustomerTicketsAsync);
        api.MapPatch("/customers/{id:guid}", ChangeCustomerAsync);
        api.MapPost("/customers/{id:guid}/merge", MergeCustomerAsync);
        api.MapPost("/customers/{id:guid}/identities/detach", DetachIdentityAsync);
        api.MapGet("/messages/{id:guid}/raw", GetRawSourceAsync);
        api.MapGet("/attachments/{id:guid}", GetAttachmentAsync);
        return endpoints;
    }

    internal static async Task<Results<Ok<Page<TicketView>>, ProblemHttpResult>> ListTicketsAsync(
        TicketQueries queries, HttpContext http, string? status, string? assignee, string? team, Guid? customer, string? priority,
        string? tag, string? channel, string? cursor, int? pageSize, Infrastructure.Teams.TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts,
        CancellationToken cancellationToken)
    {
        // Offset paging is gone; a client still sending page=2 would get the first page forever, so it is told instead.
        if (http.Request.Query.ContainsKey("page"))
            return Problems.Invalid("page", "page is not supported: pass the nextCursor of the previous page as cursor.");
        if (PageSize(pageSize) is not { } size)
            return PageSizeProblem();
        if (!TryParseEnum<TicketStatus>(status, out var wantedStatus))
            return EnumProblem<TicketStatus>("status");
        if (!TryParseEnum<TicketPriority>(priority, out var wantedPriority))
            return EnumProblem<TicketPriority>("priority");
        TicketCursor? after = null;
        if (cursor is not null)
        {
            if (!TicketCursor.TryDecode(cursor, out var decoded))
                return CursorProblem();
            after = decoded;
        }
        var filter = new TicketFilter
        {
            Status = wantedStatus,
            Assignee = assignee,
            Team = team,
            CustomerId = customer,
            Priority = wantedPriority,
            Tag = string.IsNullOrEmpty(tag) ? null : tag,
            Channel = string.IsNullOrEmpty(channel) ? null : channel,
            // A personal key lists what its person's queues would: not a restricted team's tickets they are not in.
            HiddenTeams = await HiddenTeamsAsync(http.User, teams, contexts, cancellationToken),
        };
        return TypedResults.Ok(await queries.ListAsync(filter, after, size, cancellationToken));
    }

    /// <summary>The restricted teams a personal key's person may not see (none for a system key or a Supervisor).</summary>
    private static async Task<IReadOnlyList<string>> HiddenTeamsAsync(ClaimsPrincipal user, Infrastructure.Teams.TeamDirectory teams,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken) =>
        await RepliesApi.HiddenTeamsAsync(await RepliesApi.OwnerAsync(user, contexts, cancellationToken), teams, contexts, cancellationToken);

    internal static async Task<Results<Ok<TicketDetailsView>, ProblemHttpResult>> GetTicketAsync(
        long number, TicketQueries queries, ClaimsPrincipal user, Infrastructure.Teams.TeamDirectory teams,
        IDbContextFactory<CrmDbContext> contexts, Infrastructure.TicketLinks.TicketLinkStore links, CancellationToken cancellationToken) =>
        await queries.GetDetailsAsync(number, DefaultPageSize, DefaultPageSize, cancellationToken) is { } details
            ? TypedResults.Ok(await HideRestrictedAsync(details, await HiddenTeamsAsync(user, teams, contexts, cancellationToken), links, cancellationToken))
            : NoTicket(number);

    /// <summary>The details without the numbers of tickets the person may not see, in the history and the ticket (review CS1).</summary>
    private static async Task<TicketDetailsView> HideRestrictedAsync(TicketDetailsView details, IReadOnlyList<string> hidden,
        Infrastructure.TicketLinks.TicketLinkStore links, CancellationToken cancellationToken) => details with
    {
        Ticket = await links.HideRestrictedNumbersAsync(details.Ticket, hidden, cancellationToken),
        History = await links.HideRestrictedLinksAsync(details.History, hidden, cancellationToken),
    };

    internal static async Task<Results<Ok<Page<TimelineEntry>>, ProblemHttpResult>> GetTimelineAsync(
        long number, string? cursor, int? pageSize, TicketQueries queries, CancellationToken cancellationToken)
    {
        if (PageSize(pageSize) is not { } size)
            return PageSizeProblem();
        EntryCursor? before = null;
        if (cursor is not null)
        {
            if (!EntryCursor.TryDecode(cursor, CursorKind.Timeline, out var decoded))
                return CursorProblem();
            before = decoded;
        }
        return await queries.TimelineAsync(number, before, size, cancellationToken) is { } page ? TypedResults.Ok(page) : NoTicket(number);
    }

    internal static async Task<Results<Ok<Page<AuditEntryView>>, ProblemHttpResult>> GetHistoryAsync(
        long number, string? cursor, int? pageSize, TicketQueries queries, ClaimsPrincipal user, Infrastructure.Teams.TeamDirectory teams,
        IDbContextFactory<CrmDbContext> contexts, Infrastructure.TicketLinks.TicketLinkStore links, CancellationToken cancellationToken)
    {
        if (PageSize(pageSize) is not { } size)
            return PageSizeProblem();
        EntryCursor? before = null;
        if (cursor is not null)
        {
            if (!EntryCursor.TryDecode(cursor, CursorKind.History, out var decoded))
                return CursorProblem();
            before = decoded;
        }
        if (await queries.HistoryAsync(number, before, size, cancellationToken) is not { } page)
            return NoTicket(number);
        // The cursor stays that of the full page: a row left out is skipped, never read again.
        return TypedResults.Ok(page with { Items = await links.HideRestrictedLinksAsync(page.Items, await HiddenTeamsAsync(user, teams, contexts, cancellationToken), cancellationToken) });
    }

    /// <summary>Longest identity key a request may name (the longest kind prefix, a channel id and a 320-character address).</summary>
    internal const int MaxIdentityKeyLength = 400;

    /// <summary>Longest Idempotency-Key accepted; a longer one is refused rather than silently ignored.</summary>
    internal const int MaxIdempotencyKeyLength = 200;

    internal static async Task<Results<Created<TimelineEntry>, ProblemHttpResult>> ReplyAsync(
        long number, ReplyRequest request, HttpContext http, ClaimsPrincipal user, IGrainFactory grains, IOptions<TicketOptions> options, CancellationToken cancellationToken)
    {
        if (!TryReadIdempotencyKey(http, user, out var requestId))
            return Problems.Invalid("Idempotency-Key", $"Idempotency-Key must be one value of 1-{MaxIdempotencyKeyLength} visible ASCII characters.");
        if (!ReplyInput.TryParseCc(request.Cc ?? [], options.Value.MaxReplyCc, out var cc, out var ccError))
            return Problems.Invalid("cc", ccError!);
        var message = await grains.GetGrain<ITicketGrain>(number).ReplyAsync(new AgentReply
        {
            Actor = user.Actor(),
            Text = request.Text ?? "",
            Html = request.Html,
            ConversationId = request.ConversationId,
            RequestId = requestId,
            SetStatus = request.Status,
            Cc = cc,
        }, cancellationToken);
        return TypedResults.Created($"/api/v1/tickets/{message.TicketNumber}", ToEntry(message));
    }

    /// <summary>A reply with files: multipart/form-data with the fields of <see cref="ReplyRequest"/> (text, html,
    /// conversationId, status, cc — repeated or comma-separated) and any number of file parts up to the limits.</summary>
    internal static async Task<Results<Created<TimelineEntry>, ProblemHttpResult>> ReplyWithFilesAsync(
        long number, HttpContext http, ClaimsPrincipal user, IGrainFactory grains, IOptions<TicketOptions> options, CancellationToken cancellationToken)
    {
        if (!TryReadIdempotencyKey(http, user, out var requestId))
            return Problems.Invalid("Idempotency-Key", $"Idempotency-Key must be one value of 1-{MaxIdempotencyKeyLength} visible ASCII characters.");
        var limits = options.Value;
        if (http.Request.ContentLength > ReplyInput.MaxBodyBytes(limits))
            return Problems.Of(ProblemKind.TooLarge, $"The reply is larger than its files' limits allow ({limits.MaxReplyAttachments} files of {limits.MaxReplyAttachmentBytes / 1024 / 1024} MB).", "body");
        IFormCollection form;
        try
        {
            form = await ReplyInput.ReadFormAsync(http.Request, limits, cancellationToken);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Problems.Of(ProblemKind.TooLarge, "The reply's body is larger than its limits allow.", "body");
        }
        catch (InvalidDataException ex) when (ex.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
        {
            // The form reader's own limits (body length, part count, header size) say "… limit … exceeded".
            return Problems.Of(ProblemKind.TooLarge, "The reply's body is larger than its limits allow.", "body");
        }
        catch (Exception ex) when (ex is InvalidDataException or BadHttpRequestException or IOException)
        {
            // A missing or wrong boundary, a truncated part: the client's mistake, not a size (review ER15).
            return Problems.Of(ProblemKind.MalformedBody, "The reply's body is not a valid multipart form.", "body");
        }
        Guid? conversationId = null;
        if (form["conversationId"] is { Count: > 0 } rawConversation && !string.IsNullOrEmpty(rawConversation[0]))
        {
            if (!Guid.TryParse(rawConversation[0], out var parsed))
                return Problems.Invalid("conversationId", "conversationId is not a GUID.");
            conversationId = parsed;
        }
        TicketStatus? status = null;
        if (form["status"] is { Count: > 0 } rawStatus && !string.IsNullOrEmpty(rawStatus[0]))
        {
            if (!Enum.TryParse<TicketStatus>(rawStatus[0], ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed) || int.TryParse(rawStatus[0], out _))
                return Problems.Invalid("status", "status is not a ticket status.");
            status = parsed;
        }
        var request = new ReplyRequest(form["text"].FirstOrDefault(), form["html"].FirstOrDefault(), conversationId, status, [.. form["cc"].OfType<string>()]);
        request.CheckLimits();
        if (!ReplyInput.TryParseCc(request.Cc!, limits.MaxReplyCc, out var cc, out var ccError))
            return Problems.Invalid("cc", ccError!);
        var (files, fileError) = await ReplyInput.ReadFilesAsync(form.Files, limits, cancellationToken);
        if (fileError is not null)
            return Problems.Of(ProblemKind.TooLarge, fileError, "files");
        var message = await grains.GetGrain<ITicketGrain>(number).ReplyAsync(new AgentReply
        {
            Actor = user.Actor(),
            Text = request.Text ?? "",
            Html = request.Html,
            ConversationId = request.ConversationId,
            RequestId = requestId,
            SetStatus = request.Status,
            Cc = cc,
            Attachments = files,
        }, cancellationToken);
        return TypedResults.Created($"/api/v1/tickets/{message.TicketNumber}", ToEntry(message));
    }

    /// <summary>The optional Idempotency-Key header, scoped to the caller (two clients that both pick "reply-1" never
    /// see each other's message); false when it is malformed.</summary>
    internal static bool TryReadIdempotencyKey(HttpContext http, ClaimsPrincipal user, out string? requestId)
    {
        requestId = null;
        if (!http.Request.Headers.TryGetValue("Idempotency-Key", out var keys))
            return true;
        if (keys.Count != 1 || keys[0] is not { Length: > 0 and <= MaxIdempotencyKeyLength } key || key.Any(c => c is < '\u0021' or > '\u007e'))
            return false;
        requestId = $"{user.KeyId()}:{key}";
        return true;
    }

    internal static async Task<Results<Created<TimelineEntry>, ProblemHttpResult>> AddNoteAsync(
        long number, NoteRequest request, HttpContext http, ClaimsPrincipal user, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (!TryReadIdempotencyKey(http, user, out var requestId))
            return Problems.Invalid("Idempotency-Key", $"Idempotency-Key must be one value of 1-{MaxIdempotencyKeyLength} visible ASCII characters.");
        // The note's key is its own ("note:"), so a client reusing one key for a reply and a note gets both.
        var note = await grains.GetGrain<ITicketGrain>(number).AddNoteAsync(user.Actor(), request.Text ?? "",
            requestId is null ? null : "note:" + requestId, cancellationToken);
        return TypedResults.Created($"/api/v1/tickets/{number}", ToEntry(note));
    }

    internal static async Task<Ok<TicketView>> ChangeTicketAsync(
        long number, ChangeTicketRequest request, ClaimsPrincipal user, IGrainFactory grains, TicketQueries queries, CancellationToken cancellationToken)
    {
        await grains.GetGrain<ITicketGrain>(number).ChangeAsync(request.ToContract(), user.Actor(), cancellationToken);
        return TypedResults.Ok(await ReadTicketAsync(queries, number, cancellationToken));
    }

    internal static async Task<Results<Ok<TicketView>, ProblemHttpResult>> MergeTicketAsync(
        long number, MergeTicketRequest request, ClaimsPrincipal user, IGrainFactory grains, TicketQueries queries, CancellationToken cancellationToken)
    {
        if (request.Into is not { } into)
            return Problems.Invalid("into", "into is required: the number of the ticket to merge this one into.");
        await grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets).MergeTicketsAsync(number, into, user.Actor(), cancellationToken);
        return TypedResults.Ok(await ReadTicketAsync(queries, into, cancellationToken));
    }

    internal static async Task<Results<Created<TicketView>, ProblemHttpResult>> SplitTicketAsync(
        long number, SplitTicketRequest request, ClaimsPrincipal user, IGrainFactory grains, TicketQueries queries, CancellationToken cancellationToken)
    {
        if (request.MessageId is not { } messageId)
            return Problems.Invalid("messageId", "messageId is required: the message to move into a new ticket.");
        var created = await grains.GetGrain<ITicketGrain>(number).SplitAsync(messageId, user.Actor(), cancellationToken);
        return TypedResults.Created($"/api/v1/tickets/{created.Number}", await ReadTicketAsync(queries, created.Number, cancellationToken));
    }

    internal static async Task<Results<Ok<CustomerView>, ProblemHttpResult>> GetCustomerAsync(
        Guid id, CustomerQueries queries, CancellationToken cancellationToken) =>
        await queries.GetAsync(id, cancellationToken) is { } customer ? TypedResults.Ok(customer) : NoCustomer(id);

    internal static async Task<Results<Ok<Page<TicketView>>, ProblemHttpResult>> GetCustomerTicketsAsync(
        Guid id, string? cursor, int? pageSize, CustomerQueries queries, ClaimsPrincipal user, Infrastructure.Teams.TeamDirectory teams,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        if (PageSize(pageSize) is not { } size)
            return PageSizeProblem();
        TicketCursor? after = null;
        if (cursor is not null)
        {
            if (!TicketCursor.TryDecode(cursor, out var decoded))
                return CursorProblem();
            after = decoded;
        }
        return await queries.TicketsAsync(id, after, size, cancellationToken, await HiddenTeamsAsync(user, teams, contexts, cancellationToken)) is { } page
            ? TypedResults.Ok(page) : NoCustomer(id);
    }

    internal static async Task<Ok<CustomerView>> ChangeCustomerAsync(
        Guid id, ChangeCustomerRequest request, ClaimsPrincipal user, IGrainFactory grains, CustomerQueries queries, CancellationToken cancellationToken)
    {
        await grains.GetGrain<ICustomerGrain>(id).UpdateProfileAsync(request.ToContract(), user.Actor(), cancellationToken);
        return TypedResults.Ok(await ReadCustomerAsync(queries, id, cancellationToken));
    }

    internal static async Task<Results<Ok<CustomerView>, ProblemHttpResult>> MergeCustomerAsync(
        Guid id, MergeCustomerRequest request, ClaimsPrincipal user, IGrainFactory grains, CustomerQueries queries, CancellationToken cancellationToken)
    {
        if (request.SourceCustomerId is not { } source)
            return Problems.Invalid("sourceCustomerId", "sourceCustomerId is required: the customer to merge into this one.");
        await grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(source, id, user.Actor(), cancellationToken);
        return TypedResults.Ok(await ReadCustomerAsync(queries, id, cancellationToken));
    }

    internal static async Task<Results<Ok<CustomerView>, ProblemHttpResult>> DetachIdentityAsync(
        Guid id, DetachIdentityRequest request, ClaimsPrincipal user, IGrainFactory grains, CustomerQueries queries, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(request.Identity))
            return Problems.Invalid("identity", "identity is required: the identity key to detach, e.g. \"email:alice@example.com\".");
        if (request.Identity.Length > MaxIdentityKeyLength)
            return Problems.Invalid("identity", $"identity is longer than {MaxIdentityKeyLength} characters; no identity key is that long.");
        var identity = grains.GetGrain<IIdentityGrain>(request.Identity);
        if (await identity.GetCustomerAsync() != id)
            return Problems.Of(ProblemKind.NotFound, $"Customer {id} has no identity '{request.Identity}'.", "identity");
        var created = await identity.DetachAsync(user.Actor(), cancellationToken);
        return TypedResults.Ok(await ReadCustomerAsync(queries, created, cancellationToken));
    }

    internal static async Task<IResult> GetRawSourceAsync(Guid id, IDbContextFactory<CrmDbContext> contexts, IBlobStore blobs, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var raw = await db.RawSources.AsNoTracking().FirstOrDefaultAsync(r => r.MessageId == id, cancellationToken);
        if (raw is null)
            return Problems.Of(ProblemKind.NotFound, $"No raw source for message {id}.", "id");
        // Served as an opaque download: the raw source is untrusted and must never render in the console's origin.
        var stream = raw.Content is { } inline ? new MemoryStream(inline) : raw.BlobSha256 is { } hash ? blobs.Open(hash) : null;
        if (stream is null)
            return Problems.Of(ProblemKind.NotFound, $"The raw source of message {id} is missing from the blob store.", "id");
        return TypedResults.File(stream, "application/octet-stream", $"message-{id}.raw");
    }

    internal static async Task<IResult> GetAttachmentAsync(Guid id, HttpContext http, IDbContextFactory<CrmDbContext> contexts, IBlobStore blobs, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var attachment = await db.Attachments.AsNoTracking().FirstOrDefaultAsync(a => a.Id == id, cancellationToken);
        if (attachment is null || blobs.Open(attachment.Sha256) is not { } stream)
            return Problems.Of(ProblemKind.NotFound, $"No attachment {id}.", "id");
        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Response.Headers.ContentSecurityPolicy = "sandbox";
        return TypedResults.File(stream, attachment.ContentType, attachment.FileName);
    }

    // Changes go through the grain, which answers only once its write is committed, so the read that follows sees it.
    private static async Task<TicketView> ReadTicketAsync(TicketQueries queries, long number, CancellationToken cancellationToken) =>
        await queries.GetAsync(number, cancellationToken)
        ?? throw new InvalidOperationException($"Ticket #{number} was changed but is not in the store.");

    private static async Task<CustomerView> ReadCustomerAsync(CustomerQueries queries, Guid id, CancellationToken cancellationToken) =>
        await queries.GetAsync(id, cancellationToken)
        ?? throw new InvalidOperationException($"Customer {id} was changed but is not in the store.");

    /// <summary>A reply or note as the grain returned it, in the timeline's shape, without another read.</summary>
    internal static TimelineEntry ToEntry(MessageSnapshot m) => new()
    {
        Id = m.Id,
        ConversationId = m.ConversationId,
        TicketNumber = m.TicketNumber,
        Direction = m.Direction,
        ExternalId = m.ExternalId,
        Author = m.Author,
        Text = m.Text,
        Html = m.Html,
        CreatedAt = m.CreatedAt,
        SentAt = m.SentAt,
        Delivery = m.Delivery,
        DeliveryError = m.DeliveryError,
        Channel = m.Channel,
        Attachments = m.Attachments.Select(a => new AttachmentView(a.Id, a.FileName, a.ContentType, a.Length, a.Sha256)).ToList(),
        Cc = m.Cc,
    };

    private static int? PageSize(int? pageSize) => (pageSize ?? DefaultPageSize) is var size and >= 1 and <= MaxPageSize ? size : null;

    private static ProblemHttpResult PageSizeProblem() => Problems.Invalid("pageSize", $"pageSize must be between 1 and {MaxPageSize}.");

    private static ProblemHttpResult CursorProblem() =>
        Problems.Invalid("cursor", "cursor is not valid here: pass the nextCursor of the previous page of this list unchanged.");

    private static ProblemHttpResult NoTicket(long number) => Problems.Of(ProblemKind.NotFound, $"No ticket #{number}.", "number");

    private static ProblemHttpResult NoCustomer(Guid id) => Problems.Of(ProblemKind.NotFound, $"No customer {id}.", "id");

    private static bool TryParseEnum<T>(string? text, out T? value) where T : struct, Enum
    {
        value = null;
        if (text is null)
            return true;
        if (!Enum.TryParse<T>(text, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
            return false;
        value = parsed;
        return true;
    }

    private static ProblemHttpResult EnumProblem<T>(string field) where T : struct, Enum =>
        Problems.Invalid(field, $"{field} must be one of: {string.Join(", ", Enum.GetNames<T>().Select(JsonName))}.");

    private static string JsonName(string name) => char.ToLowerInvariant(name[0]) + name[1..];
}
