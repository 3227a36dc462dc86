using System.ComponentModel.DataAnnotations;
using Crm.Connectors.Abstractions;
using Crm.Service.Api;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.Mvc.Filters;
using Crm.Service.AgentConsole;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Infrastructure.Replies;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Tickets;

/// <summary>
/// The ticket page: the timeline across the ticket's conversations, reply, note, field changes and the audit history.
/// Reads come from the read model; every change is the same grain call the REST API makes, with the person as actor,
/// then a redirect (so a reload never sends a reply twice).
/// </summary>
public sealed partial class DetailsModel(TicketQueries queries, IGrainFactory grains, IDbContextFactory<CrmDbContext> contexts, IBlobStore blobs,
    TicketAccess access, TeamDirectory teamDirectory, Mentions mentions, ReplyLibrary library, MacroRunner macros, Crm.Service.Search.ISearchIndex kbIndex,
    Microsoft.Extensions.Options.IOptions<ConsoleOptions> consoleOptions) : PageModel
{
    private const int TimelinePage = 50;
    private const int HistoryPage = 50;

    [FromRoute] public long Number { get; set; }

    public TicketView Ticket { get; private set; } = null!;

    /// <summary>Oldest first, as a conversation is read.</summary>
    public IReadOnlyList<TimelineEntry> Timeline { get; private set; } = [];

    public string? OlderTimelineCursor { get; private set; }

    public IReadOnlyList<AuditEntryView> History { get; private set; } = [];

    /// <summary>The ticket's conversations with their channel, to label messages and to pick where a reply goes.</summary>
    public IReadOnlyDictionary<Guid, ConversationChannel> Conversations { get; private set; } = new Dictionary<Guid, ConversationChannel>();

    public sealed record ConversationChannel(Guid Id, string ChannelAccountId, ChannelKind Kind, string CustomerIdentity);

    [BindProperty, StringLength(100_000)] public string? ReplyText { get; set; }
    [BindProperty] public Guid? ReplyConversation { get; set; }
    [BindProperty] public TicketStatus? ReplyStatus { get; set; }
    /// <summary>Email replies: addresses to copy in, comma-separated.</summary>
    [BindProperty, StringLength(12_000)] public string? ReplyCc { get; set; }
    [BindProperty, StringLength(100_000)] public string? NoteText { get; set; }
    /// <summary>A fresh id in every rendered reply form (see <see cref="ReplyRequestId"/>).</summary>
    [BindProperty] public Guid? RequestId { get; set; }
    [BindProperty] public TicketStatus? NewStatus { get; set; }
    [BindProperty] public TicketPriority? NewPriority { get; set; }
    [BindProperty, StringLength(200)] public string? NewAssignee { get; set; }
    [BindProperty, StringLength(200)] public string? NewTeam { get; set; }
    // The values the side form showed, posted back to tell what the agent changed (see OnPostChangeAsync).
    [BindProperty] public TicketStatus? OriginalStatus { get; set; }
    [BindProperty] public TicketPriority? OriginalPriority { get; set; }
    [BindProperty, StringLength(200)] public string? OriginalAssignee { get; set; }
    [BindProperty, StringLength(200)] public string? OriginalTeam { get; set; }
    /// <summary>The ticket's tags, separated by commas (the tags form replaces them all).</summary>
    [BindProperty, StringLength(4000)] public string? TagsText { get; set; }

    /// <summary>Canned responses this person may use (titles and shortcuts; the filled text comes from
    /// <see cref="OnGetCannedTextAsync"/> when inserted, so the page never carries every text in full: review F8).</summary>
    public IReadOnlyList<CannedResponseRecord> Canned { get; private set; } = [];

    /// <summary>One canned response (the person's own or a shared one) with this ticket's placeholders filled, as text.</summary>
    public async Task<IActionResult> OnGetCannedTextAsync(Guid id, CancellationToken cancellationToken)
    {
        if (await library.FindCannedAsync(id, cancellationToken) is not { } canned
            || (canned.OwnerId != ReplyLibrary.Shared && canned.OwnerId != TicketAccess.UserId(User))
            || await queries.GetAsync(Number, cancellationToken) is not { } ticket)
            return NotFound();
        var values = new PlaceholderValues(ticket.CustomerName, ticket.Number, ticket.Subject, Api.AgentNames.Display(User.Identity!.Name!), User.Identity!.Name!);
        Response.Headers.XContentTypeOptions = "nosniff";
        return Content(Placeholders.Render(canned.Text, values), "text/plain; charset=utf-8");
    }

    public IReadOnlyList<MacroRecord> Macros { get; private set; } = [];

    [BindProperty] public Guid? MacroId { get; set; }

    /// <summary>The macro form's one-time id: new on every render, except when the page shows a refused or partial
    /// apply, where it keeps the posted id, so applying again from that page does only the missing steps (never a
    /// second reply) while a freshly loaded page applies the macro anew.</summary>
    public string MacroFormId { get; private set; } = Guid.NewGuid().ToString("N");

    /// <summary>Teams for the team field: those this person may see, plus the ticket's own.</summary>
    public IReadOnlyList<TeamView> Teams { get; private set; } = [];

    /// <summary>Every handler of this page, GET or POST, first checks that this person may see the ticket: a ticket of a
    /// restricted team they are not in answers 404, as if it did not exist.</summary>
    public override async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        if (!await access.CanSeeTicketAsync(User, Number, HttpContext.RequestAborted))
        {
            context.Result = NotFound();
            return;
        }
        await next();
    }

    /// <summary>True when the page shows an older part of the timeline: live changes then announce themselves
    /// instead of replacing what the agent is reading.</summary>
    public bool ShowsOlderPage { get; private set; }

    public async Task<IActionResult> OnGetAsync(string? cursor, CancellationToken cancellationToken)
    {
        ShowsOlderPage = cursor is not null;
        if (!await LoadAsync(cursor, cancellationToken))
            return NotFound();
        await SearchKnowledgeBaseAsync(cancellationToken);
        return Page();
    }

    /// <summary>The knowledge-base panel's search text (<c>?kb=</c>) and language (<c>?kblang=</c>).</summary>
    [FromQuery(Name = "kb")] public string? KbQuery { get; set; }
    [FromQuery(Name = "kblang")] public string? KbLanguage { get; set; }

    /// <summary>A published article found for the panel: the snippet as plain text, the help-center link (public
    /// articles only; internal ones are for agents and are inserted as text), and the text to insert.</summary>
    public sealed record KbHit(string Title, string Snippet, string Language, string? Url, string Text, bool Internal);

    public IReadOnlyList<KbHit> KbHits { get; private set; } = [];

    public const int KbTextLimit = 4000;

    /// <summary>Characters of the subject and latest customer message that make a suggestion's query.</summary>
    public const int KbSuggestionLimit = 500;

    /// <summary>True when <see cref="KbHits"/> are suggestions for the ticket's own text (no query was typed).</summary>
    public bool KbSuggested { get; private set; }

    /// <summary>
    /// Searches published articles through the search index (Lucene or Elasticsearch) in one language family: the one
    /// the agent picked, else the customer's language, else the agent's own UI language, so a Chinese customer gets
    /// Chinese articles even when the agent works in English.
    /// </summary>
    private async Task SearchKnowledgeBaseAsync(CancellationToken cancellationToken)
    {
        var customerLanguage = await CustomerLanguageAsync(cancellationToken);
        KbLanguage = Crm.Service.Search.SearchLanguages.IsValid(KbLanguage) ? KbLanguage
            : LanguageFamily(customerLanguage) ?? LanguageFamily(System.Globalization.CultureInfo.CurrentUICulture.Name) ?? Crm.Service.Search.SearchLanguages.English;
        string text;
        if (string.IsNullOrWhiteSpace(KbQuery))
        {
            // No query typed: suggest articles for what the customer asked (Zendesk's "suggested articles"): the
            // subject and the customer's latest message, bounded like a typed query (the index takes 64 terms).
            var latest = Timeline.Where(e => e.Direction == MessageDirection.Inbound && !string.IsNullOrWhiteSpace(e.Text))
                .MaxBy(e => e.CreatedAt)?.Text;
            var about = $"{Ticket.Subject} {latest}".Trim();
            if (about.Length == 0)
                return;
            text = about.Length > KbSuggestionLimit ? about[..KbSuggestionLimit] : about;
            KbSuggested = true;
        }
        else if (KbQuery.Trim() is { Length: <= 200 } typed)
            text = typed;
        else
            return;
        var languages = KbLanguage == Crm.Service.Search.SearchLanguages.English ? new[] { Crm.Service.Search.SearchLanguages.English }
            : [Crm.Service.Search.SearchLanguages.SimplifiedChinese, Crm.Service.Search.SearchLanguages.TraditionalChinese];
        var results = await kbIndex.SearchAsync(new Crm.Service.Search.SearchQuery(text)
        {
            Languages = languages,
            Statuses = [Infrastructure.KnowledgeBase.ArticleStatus.Published],
            Take = KbSuggested ? 5 : 8,
        }, cancellationToken);
        var ids = results.Hits.Select(h => Guid.TryParse(h.Id, out var id) ? id : Guid.Empty).Where(id => id != Guid.Empty).ToList();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // The store decides what is published now (the index may lag a moment behind an unpublish).
        var articles = await db.KbArticles.AsNoTracking().Where(a => ids.Contains(a.Id) && a.Status == Infrastructure.KnowledgeBase.ArticleStatus.Published)
            .ToDictionaryAsync(a => a.Id.ToString("D"), cancellationToken);
        // Links go to customers: the configured public address, never an internal host name the console was reached by.
        var origin = consoleOptions.Value.PublicBaseUrl?.TrimEnd('/') ?? $"{Request.Scheme}://{Request.Host}";
        KbHits = [.. results.Hits.Where(h => articles.ContainsKey(h.Id)).Select(h =>
        {
            var article = articles[h.Id];
            var url = article.Visibility == Infrastructure.KnowledgeBase.ArticleVisibility.Public
                ? $"{origin}/help/{Uri.EscapeDataString(article.Language)}/articles/{Uri.EscapeDataString(article.Slug)}" : null;
            var body = article.BodyText.Length > KbTextLimit ? article.BodyText[..KbTextLimit] + "…" : article.BodyText;
            return new KbHit(article.Title, SnippetText(h.Snippet), article.Language, url, body,
                article.Visibility != Infrastructure.KnowledgeBase.ArticleVisibility.Public);
        })];
    }

    private async Task<string?> CustomerLanguageAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Customers.AsNoTracking().Where(c => c.Id == Ticket.CustomerId).Select(c => c.Language).FirstOrDefaultAsync(cancellationToken);
    }

    private static string? LanguageFamily(string? language) => language switch
    {
        not null when language.StartsWith("zh", StringComparison.OrdinalIgnoreCase) => Crm.Service.Search.SearchLanguages.SimplifiedChinese,
        not null when language.StartsWith("en", StringComparison.OrdinalIgnoreCase) => Crm.Service.Search.SearchLanguages.English,
        _ => null,
    };

    /// <summary>The index's snippet is encoded HTML with &lt;mark&gt;; the page shows it as text (Razor encodes it again).</summary>
    private static string SnippetText(string snippet) =>
        System.Net.WebUtility.HtmlDecode(System.Text.RegularExpressions.Regex.Replace(snippet, "</?mark>", ""));

    /// <summary>The next ticket to work (keyboard "j"): the next one of All open after this one in the queue's order,
    /// among those this person may see; the queue when there is none.</summary>
    public async Task<IActionResult> OnGetNextAsync(CancellationToken cancellationToken)
    {
        if (await queries.GetAsync(Number, cancellationToken) is not { } ticket)
            return NotFound();
        var filter = ConsoleQueues.Filter(ConsoleQueue.Open, User.Identity!.Name!) with { HiddenTeams = await access.HiddenTeamsAsync(User, cancellationToken) };
        var next = await queries.ListAsync(filter, TicketSort.Updated, new QueueCursor(TicketSort.Updated, ticket.UpdatedAt, default, ticket.Number), 1, cancellationToken);
        return Redirect(next.Items.FirstOrDefault() is { } found ? $"/Tickets/{found.Number}" : "/Queues/Open");
    }

    /// <summary>The timeline alone, for the live update of an open ticket page (same rendering, same encoding).</summary>
    public async Task<IActionResult> OnGetTimelineAsync(CancellationToken cancellationToken) =>
        await LoadAsync(null, cancellationToken) ? Partial("_Timeline", this) : NotFound();

    // The form's files are checked against the reply limits (Tickets:MaxReplyAttachments, MaxReplyAttachmentBytes);
    // the whole body stays within the server's request size limit (Kestrel's 30 MB), as every console form does.
    public async Task<IActionResult> OnPostReplyAsync([FromServices] Microsoft.Extensions.Options.IOptions<Crm.Service.Grains.TicketOptions> ticketOptions, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(ReplyText))
            ModelState.AddModelError(nameof(ReplyText), "Write a reply first.");
        var limits = ticketOptions.Value;
        if (Request.ContentLength > ReplyInput.MaxBodyBytes(limits))
            ModelState.AddModelError("", $"The reply is too large: at most {limits.MaxReplyAttachments} files of {limits.MaxReplyAttachmentBytes / 1024 / 1024} MB.");
        if (!ReplyInput.TryParseCc([ReplyCc], limits.MaxReplyCc, out var cc, out var ccError))
            ModelState.AddModelError(nameof(ReplyCc), ccError!);
        List<InboundAttachment> files = [];
        // A reply with files takes an upload turn (the API's limit, review RA2) while its files are held in memory.
        var withFiles = ModelState.IsValid && Request.HasFormContentType && Request.Form.Files.Count > 0;
        using var turn = withFiles ? await HttpContext.RequestServices.GetRequiredService<UploadGate>().EnterAsync(HttpContext) : null;
        if (withFiles && turn is null)
            ModelState.AddModelError("ReplyFiles", UploadGate.BusyMessage);
        if (ModelState.IsValid && Request.HasFormContentType)
        {
            var (read, fileError) = await ReplyInput.ReadFilesAsync(Request.Form.Files, limits, cancellationToken);
            if (fileError is not null)
                ModelState.AddModelError("ReplyFiles", fileError);
            files = read;
        }
        return await ChangeAsync(() => grains.GetGrain<ITicketGrain>(Number).ReplyAsync(new AgentReply
        {
            Actor = User.ConsoleActor(),
            // One rendered form is one reply: a double click or a browser re-post answers with the first reply.
            RequestId = ReplyRequestId(),
            Text = ReplyText!.Trim(),
            ConversationId = ReplyConversation,
            SetStatus = ReplyStatus,
            Cc = cc,
            Attachments = files,
        }, cancellationToken), () => new ReplyRequest(ReplyText, null, ReplyConversation, ReplyStatus).CheckLimits(), cancellationToken);
    }

    public async Task<IActionResult> OnPostNoteAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(NoteText))
            ModelState.AddModelError(nameof(NoteText), "Write a note first.");
        return await ChangeAsync(async () =>
        {
            // One rendered form is one note: a double click or a re-post answers with the first note.
            await grains.GetGrain<ITicketGrain>(Number).AddNoteAsync(User.ConsoleActor(), NoteText!.Trim(), ReplyRequestId() + ":note", cancellationToken);
            // After the note is stored: a notification never points at a note that is not there.
            var named = Mentions.Parse(NoteText);
            if (named.Count > 0)
            {
                var team = (await queries.GetAsync(Number, cancellationToken))?.Team;
                var resolved = await mentions.ResolveAsync(named, team, cancellationToken);
                var me = TicketAccess.UserId(User);
                await mentions.NotifyAsync(resolved.People.Select(p => p.UserId).Where(id => id != me), new AgentNotification("mentioned", Number, User.Identity!.Name));
            }
        }, () => new NoteRequest(NoteText).CheckLimits(), cancellationToken);
    }

    public async Task<IActionResult> OnPostTagsAsync(CancellationToken cancellationToken)
    {
        var tags = (TagsText ?? "").Split([',', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var request = new ChangeTicketRequest(null, null, tags, null, null, null);
        return await ChangeAsync(() => grains.GetGrain<ITicketGrain>(Number).ChangeAsync(request.ToContract(), User.ConsoleActor(), cancellationToken),
            request.CheckLimits, cancellationToken);
    }

    /// <summary>
    /// Saves the side form. Only the fields the agent changed are sent, and each only if nobody else changed it since
    /// the page was loaded (the form carries the values it showed): saving a stale page never undoes a colleague's
    /// assignment or status. A post without those values (a page from before this rule) is refused, not guessed at.
    /// </summary>
    public async Task<IActionResult> OnPostChangeAsync(CancellationToken cancellationToken)
    {
        if (await queries.GetAsync(Number, cancellationToken) is not { } current)
            return NotFound();
        var form = Request.Form;
        if (!form.ContainsKey(nameof(OriginalStatus)) || !form.ContainsKey(nameof(OriginalPriority))
            || !form.ContainsKey(nameof(OriginalAssignee)) || !form.ContainsKey(nameof(OriginalTeam)))
        {
            ModelState.AddModelError("", "This form is out of date; reload the ticket and make the change again.");
            return await ChangeAsync(() => Task.CompletedTask, () => { }, cancellationToken);
        }
        var assignee = NewAssignee?.Trim() ?? "";
        var team = NewTeam?.Trim() ?? "";
        TicketStatus? status = NewStatus != OriginalStatus ? NewStatus : null;
        TicketPriority? priority = NewPriority != OriginalPriority ? NewPriority : null;
        string? newAssignee = assignee != (OriginalAssignee ?? "") ? assignee : null;
        string? newTeam = team != (OriginalTeam ?? "") ? team : null;
        var conflict = false;
        void Conflict(string field, string? now)
        {
            conflict = true;
            ModelState.AddModelError("", $"Someone else changed the {field} meanwhile (now {(string.IsNullOrEmpty(now) ? "none" : now)}); the form shows it, decide again.");
        }
        if (status is not null && current.Status != OriginalStatus)
            Conflict("status", current.Status.ToString());
        if (priority is not null && current.Priority != OriginalPriority)
            Conflict("priority", current.Priority.ToString());
        if (newAssignee is not null && (current.Assignee ?? "") != (OriginalAssignee ?? ""))
            Conflict("assignee", current.Assignee);
        if (newTeam is not null && (current.Team ?? "") != (OriginalTeam ?? ""))
            Conflict("team", current.Team);
        if (newTeam is { Length: > 0 } && await teamDirectory.GetAsync(newTeam, cancellationToken) is null)
            ModelState.AddModelError(nameof(NewTeam), $"There is no team '{newTeam}': an admin creates teams under Admin → Teams.");
        if (!ModelState.IsValid)
        {
            // Show the current values, so the agent decides on what is there now.
            NewStatus = null;
            NewPriority = null;
            NewAssignee = null;
            NewTeam = null;
            if (conflict)
                Response.StatusCode = StatusCodes.Status409Conflict;
        }
        var request = new ChangeTicketRequest(status, priority, null, newAssignee, newTeam, null);
        if (status is null && priority is null && newAssignee is null && newTeam is null && ModelState.IsValid)
            return Redirect($"/Tickets/{Number}");
        return await ChangeAsync(() => grains.GetGrain<ITicketGrain>(Number).ChangeAsync(request.ToContract(), User.ConsoleActor(), cancellationToken),
            request.CheckLimits, cancellationToken);
    }

    [BindProperty] public long? MergeTarget { get; set; }
    [BindProperty] public Guid? SplitMessage { get; set; }

    /// <summary>Merges this ticket into another of the same customer (Supervisors: it cannot be undone), through the
    /// merge coordinator like the API and the bulk action; then shows the target.</summary>
    public async Task<IActionResult> OnPostMergeAsync(CancellationToken cancellationToken)
    {
        if (!User.IsInRole(ConsoleRoles.Supervisor))
            return Forbid();
        if (MergeTarget is not { } target || !await access.CanSeeTicketAsync(User, target, cancellationToken))
        {
            ModelState.AddModelError(nameof(MergeTarget), "Enter the number of a ticket to merge this one into.");
            return await ChangeAsync(() => Task.CompletedTask, () => { }, cancellationToken);
        }
        var result = await ChangeAsync(() => grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets)
            .MergeTicketsAsync(Number, target, User.ConsoleActor(), cancellationToken), () => { }, cancellationToken);
        return result is RedirectResult ? Redirect($"/Tickets/{target}") : result;
    }

    /// <summary>True when this ticket was merged but its target does not list all of its conversations: the merge was
    /// cut after this ticket's commit (a crash, a timeout) and the target cannot reply on them (review console2 F7).</summary>
    public bool UnfinishedMerge { get; private set; }

    /// <summary>Runs the merge again from this (merged) ticket: the core repeats only the target's half.</summary>
    public async Task<IActionResult> OnPostFinishMergeAsync(CancellationToken cancellationToken)
    {
        if (!User.IsInRole(ConsoleRoles.Supervisor))
            return Forbid();
        if (await queries.GetAsync(Number, cancellationToken) is not { MergedInto: { } target })
        {
            ModelState.AddModelError("", "This ticket is not merged.");
            return await ChangeAsync(() => Task.CompletedTask, () => { }, cancellationToken);
        }
        var result = await ChangeAsync(() => grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets)
            .MergeTicketsAsync(Number, target, User.ConsoleActor(), cancellationToken), () => { }, cancellationToken);
        return result is RedirectResult ? Redirect($"/Tickets/{target}") : result;
    }

    /// <summary>Moves one message (and what the customer sends on after it, per the core's split rules) into a new ticket.</summary>
    public async Task<IActionResult> OnPostSplitAsync(CancellationToken cancellationToken)
    {
        long? created = null;
        if (SplitMessage is not { } message)
            ModelState.AddModelError(nameof(SplitMessage), "Choose the message to split off.");
        var result = await ChangeAsync(async () =>
            created = (await grains.GetGrain<ITicketGrain>(Number).SplitAsync(SplitMessage!.Value, User.ConsoleActor(), cancellationToken)).Number,
            () => { }, cancellationToken);
        return result is RedirectResult && created is { } number ? Redirect($"/Tickets/{number}") : result;
    }

    /// <summary>Applies a macro (personal or shared) to this ticket: its reply, field changes and notes at once.</summary>
    public async Task<IActionResult> OnPostMacroAsync(CancellationToken cancellationToken)
    {
        var me = TicketAccess.UserId(User);
        if (MacroId is not { } id || await library.FindMacroAsync(id, cancellationToken) is not { } macro
            || (macro.OwnerId != ReplyLibrary.Shared && macro.OwnerId != me))
        {
            ModelState.AddModelError(nameof(MacroId), "Choose one of your macros or a shared one.");
            return await ChangeAsync(() => Task.CompletedTask, () => { }, cancellationToken);
        }
        if (RequestId is { } posted && posted != Guid.Empty)
            MacroFormId = posted.ToString("N");
        var result = await ChangeAsync(async () =>
        {
            var name = User.Identity!.Name!;
            var result = await macros.ApplyAsync(macro, Number, new MacroCaller(User.ConsoleActor(), Api.AgentNames.Display(name), name),
                ReplyRequestId() + ":macro", cancellationToken);
            if (!result.Applied)
                throw new DomainException(result.Describe(macro.Name));
        }, () => { }, cancellationToken);
        return result;
    }

    /// <summary>
    /// The reply's idempotency key, scoped to the person: the form's one-time id, or, for a post without one (an
    /// older page), a digest of the form's anti-forgery token, which is the same for every post of one rendered page
    /// and new on the next render. Either way a second post of the same form is answered with the first reply.
    /// </summary>
    private string ReplyRequestId()
    {
        var form = RequestId is { } id && id != Guid.Empty
            ? id.ToString("N")
            : "t" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Request.Form["__RequestVerificationToken"].ToString())))[..32];
        return $"console:{TicketAccess.UserId(User)}:{form}";
    }

    /// <summary>An attachment of this ticket, as a download that never renders in the console's origin.</summary>
    public async Task<IActionResult> OnGetAttachmentAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var attachment = await db.Attachments.AsNoTracking()
            .Where(a => a.Id == id && db.Messages.Any(m => m.Id == a.MessageId && m.TicketNumber == Number))
            .FirstOrDefaultAsync(cancellationToken);
        if (attachment is null || blobs.Open(attachment.Sha256) is not { } stream)
            return NotFound();
        Response.Headers.XContentTypeOptions = "nosniff";
        Response.Headers.ContentSecurityPolicy = "sandbox";
        return File(stream, "application/octet-stream", attachment.FileName);
    }

    private async Task<IActionResult> ChangeAsync(Func<Task> change, Action checkLimits, CancellationToken cancellationToken)
    {
        if (ModelState.IsValid)
        {
            try
            {
                checkLimits();
                await change();
                // A ticket moved into a restricted team this person is not in is gone from their view.
                return Redirect(await access.CanSeeTicketAsync(User, Number, cancellationToken) ? $"/Tickets/{Number}" : "/Queues");
            }
            catch (DomainException refused)
            {
                ModelState.AddModelError("", refused.Message);
            }
        }
        if (Response.StatusCode != StatusCodes.Status409Conflict)
            Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        return await LoadAsync(null, cancellationToken) ? Page() : NotFound();
    }

    private async Task<bool> LoadAsync(string? cursor, CancellationToken cancellationToken)
    {
        if (await queries.GetAsync(Number, cancellationToken) is not { } ticket)
            return false;
        Ticket = ticket;
        // The side form shows the current values (kept as posted when a change was refused).
        NewStatus ??= ticket.Status;
        NewPriority ??= ticket.Priority;
        NewAssignee ??= ticket.Assignee;
        NewTeam ??= ticket.Team;
        TagsText ??= string.Join(", ", ticket.Tags);
        var me = TicketAccess.UserId(User);
        Canned = await library.CannedAsync(me, null, cancellationToken);
        Macros = await library.MacrosAsync(me, cancellationToken);
        var hidden = await access.HiddenTeamsAsync(User, cancellationToken);
        Teams = [.. (await teamDirectory.ListAsync(cancellationToken)).Where(team => !hidden.Contains(team.Id) || team.Id == ticket.Team)];
        EntryCursor? before = null;
        if (cursor is not null && EntryCursor.TryDecode(cursor, CursorKind.Timeline, out var decoded))
            before = decoded;
        UnfinishedMerge = ticket.MergedInto is { } mergedInto && ticket.ConversationIds.Count > 0
            && await queries.GetAsync(mergedInto, cancellationToken) is { } mergeTarget && ticket.ConversationIds.Except(mergeTarget.ConversationIds).Any();
        var timeline = await queries.TimelineAsync(Number, before, TimelinePage, cancellationToken);
        Timeline = timeline?.Items.Reverse().ToList() ?? [];
        OlderTimelineCursor = timeline?.NextCursor;
        var linkStore = HttpContext.RequestServices.GetRequiredService<Infrastructure.TicketLinks.TicketLinkStore>();
        // "Merged into n" names no ticket the person may not see (review CS1); UnfinishedMerge above used the real value.
        Ticket = await linkStore.HideRestrictedNumbersAsync(ticket, hidden, cancellationToken);
        History = await linkStore
            .HideRestrictedLinksAsync((await queries.HistoryAsync(Number, null, HistoryPage, cancellationToken))?.Items ?? [], hidden, cancellationToken);
        await LoadLinksAndCallsAsync(hidden, cancellationToken);
        var ids = ticket.ConversationIds.Concat(Timeline.Where(e => e.ConversationId is not null).Select(e => e.ConversationId!.Value)).Distinct().ToList();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        Conversations = await db.Conversations.AsNoTracking().Where(c => ids.Contains(c.Id))
            .ToDictionaryAsync(c => c.Id, c => new ConversationChannel(c.Id, c.ChannelAccountId, c.Channel, c.CustomerIdentity), cancellationToken);
        return true;
    }

    /// <summary>The original an edit changes and the edits of an original, among the entries on this page (edits
    /// are keyed per conversation, so two chats' message ids never meet).</summary>
    public (TimelineEntry? Original, IReadOnlyList<TimelineEntry> Edits) EditsOf(TimelineEntry entry)
    {
        if (entry.Direction != MessageDirection.Inbound || entry.ExternalId is null)
            return (null, []);
        var original = entry.EditOf is { } of
            ? Timeline.FirstOrDefault(e => e.Direction == MessageDirection.Inbound && e.ConversationId == entry.ConversationId && e.ExternalId == of)
            : null;
        var edits = entry.EditOf is null
            ? Timeline.Where(e => e.ConversationId == entry.ConversationId && e.EditOf == entry.ExternalId).ToList()
            : [];
        return (original, edits);
    }

    public string ChannelOf(TimelineEntry entry) =>
        entry.Direction == MessageDirection.Note ? "note"
        : entry.IsCall ? PhoneCalls.Channel
        : entry.ConversationId is { } id && Conversations.TryGetValue(id, out var conversation) ? conversation.ChannelAccountId
        : "—";
}
