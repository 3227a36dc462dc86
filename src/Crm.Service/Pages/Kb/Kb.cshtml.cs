using Crm.Service.Auth;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.KnowledgeBase;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Kb;

/// <summary>Articles with filters (knowledge editors and admins; the folder's policy). Admins also see the search
/// index and can rebuild it (the same idempotent reindex as POST /api/v1/admin/kb/reindex), with its progress.</summary>
public sealed class IndexModel(KnowledgeBaseStore store, ReindexService reindex, Crm.Service.Search.ISearchIndex index) : PageModel
{
    public bool IsAdmin => User.IsInRole(ConsoleRoles.Admin);
    public ReindexProgress Reindex => reindex.Progress;
    public string Engine => index.Engine;

    [FromQuery] public string? Language { get; set; }
    [FromQuery] public string? Status { get; set; }
    [FromQuery] public string? Visibility { get; set; }

    [FromQuery(Name = "page")] public int PageNumber { get; set; } = 1;

    public const int PageSize = 100;
    public IReadOnlyList<KnowledgeBaseStore.ArticleSummary> Articles { get; private set; } = [];
    public int Count { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        PageNumber = Math.Clamp(PageNumber, 1, 100_000);
        var filter = new KnowledgeBaseStore.ArticleFilter(
            string.IsNullOrEmpty(Language) ? null : Language, string.IsNullOrEmpty(Status) ? null : Status,
            string.IsNullOrEmpty(Visibility) ? null : Visibility);
        Count = (await store.StampAsync(filter, cancellationToken)).Count;
        Articles = await store.ListAsync(filter with { Skip = (PageNumber - 1) * PageSize, Take = PageSize }, cancellationToken);
    }

    /// <summary>Starts a rebuild (admins only; another click while one runs starts nothing) and shows the page again.</summary>
    public IActionResult OnPostReindex()
    {
        // 403 itself: Forbid() would send the signed-in editor to the access-denied page as if nothing was refused.
        if (!IsAdmin)
            return StatusCode(StatusCodes.Status403Forbidden);
        reindex.TryStart(out _);
        return Redirect("/Kb#search-index");
    }

    /// <summary>The rebuild's progress for the page's poller (admins only).</summary>
    public IActionResult OnGetReindexProgress() =>
        IsAdmin ? new JsonResult(new { engine = index.Engine, progress = reindex.Progress, text = Describe(reindex.Progress) }) : StatusCode(StatusCodes.Status403Forbidden);

    /// <summary>One line for the page (the poller shows the same text).</summary>
    public static string Describe(ReindexProgress p) => p.State switch
    {
        "running" => $"Rebuilding: {p.Done} of {p.Total} articles…",
        "completed" => $"Last rebuild completed: {p.Done} of {p.Total} articles, {p.FinishedAt:yyyy-MM-dd HH:mm:ss} UTC.",
        "failed" => $"Last rebuild failed: {p.Error}",
        _ => "No rebuild since the service started.",
    };

    /// <summary>The list's address for another page, keeping the filters.</summary>
    public string PageUrl(int page) => QueryHelpers.AddQueryString("/Kb", new Dictionary<string, string?>
    {
        ["language"] = Language, ["status"] = Status, ["visibility"] = Visibility, ["page"] = page.ToString(System.Globalization.CultureInfo.InvariantCulture),
    }.Where(p => !string.IsNullOrEmpty(p.Value)));
}

/// <summary>Create and edit with a live preview (the same Markdig + sanitizer path as a save), publish and unpublish.
/// Every post names the version the editor loaded; a save against an older one is answered 409 with who saved since.</summary>
public sealed class EditModel(KnowledgeBaseStore store) : PageModel
{
    [FromRoute] public Guid? Id { get; set; }
    [BindProperty] public int Version { get; set; }
    [BindProperty] public string Title { get; set; } = "";
    [BindProperty] public string Language { get; set; } = "en";
    [BindProperty] public string Visibility { get; set; } = ArticleVisibility.Internal;
    [BindProperty] public Guid? CategoryId { get; set; }
    [BindProperty] public string? Tags { get; set; }
    [BindProperty] public string Body { get; set; } = "";
    /// <summary>The help center's address segment; empty on a new article means "from the title".</summary>
    [BindProperty] public string? Slug { get; set; }

    /// <summary>The other languages' articles of this article's translation group.</summary>
    public IReadOnlyList<ArticleRecord> Translations { get; private set; } = [];
    /// <summary>The languages this article's group has no article in yet: what "link a translation" can link to.</summary>
    public IReadOnlyList<string> LinkLanguages { get; private set; } = [];
    /// <summary>The "find an article to link" text (a GET, so the search keeps no state) and what it found.</summary>
    public string? LinkSearch { get; private set; }
    public IReadOnlyList<KnowledgeBaseStore.ArticleSummary> LinkMatches { get; private set; } = [];
    /// <summary>Why the last link was refused, shown at the link field.</summary>
    public string? LinkError { get; private set; }
    public const int MaxLinkMatches = 20;
    public const int MaxLinkSearch = 200;

    public string? Status { get; private set; }
    public string PreviewHtml { get; private set; } = "";
    public string? Message { get; private set; }
    public IReadOnlyList<CategoryRecord> Categories { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync(string? linkSearch, CancellationToken cancellationToken)
    {
        Categories = await store.CategoriesAsync(cancellationToken);
        if (Id is not { } id)
            return Page();
        if (await store.GetAsync(id, cancellationToken) is not { } article)
            return NotFound();
        Load(article);
        await LoadTranslationsAsync(article, cancellationToken);
        // The search is bounded (a page of matches) instead of a list of every article of every other language.
        LinkSearch = string.IsNullOrWhiteSpace(linkSearch) ? null : linkSearch.Trim()[..Math.Min(linkSearch.Trim().Length, MaxLinkSearch)];
        if (LinkSearch is not null)
            LinkMatches = await store.FindAsync(LinkSearch, LinkLanguages, MaxLinkMatches, cancellationToken);
        return Page();
    }

    private async Task LoadTranslationsAsync(ArticleRecord article, CancellationToken cancellationToken)
    {
        Translations = [.. (await store.TranslationsAsync(article.TranslationGroup, cancellationToken)).Where(t => t.Id != article.Id)];
        var linked = Translations.Select(t => t.Language).Append(article.Language).ToHashSet(StringComparer.Ordinal);
        LinkLanguages = [.. Crm.Service.Search.SearchLanguages.All.Where(l => !linked.Contains(l))];
    }

    /// <summary>Links this article into another language's article's translation group (version-checked). The other
    /// article is named by its id (the search's "Link" buttons, or pasted) or its help-center slug; refused at the
    /// field when it does not exist, is in this language, or is already linked.</summary>
    public Task<IActionResult> OnPostLinkAsync(string? translationOf, CancellationToken cancellationToken) =>
        RunAsync(async () =>
        {
            var id = Id ?? Guid.Empty;
            var article = await store.GetAsync(id, cancellationToken) ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, "The article was deleted.");
            var other = await FindLinkTargetAsync(translationOf?.Trim() ?? "", article.Language, cancellationToken);
            if (other.Id == article.Id)
                throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "A translation is an article in another language.", "translationOf");
            if (other.TranslationGroup == article.TranslationGroup)
                throw new KnowledgeBaseException(KnowledgeBaseError.Conflict, $"\"{other.Title}\" ({other.Language}) is already linked to this article.", "translationOf");
            return await store.SetTranslationAsync(id, Version, other.Id, User.ConsoleActor(), cancellationToken);
        }, cancellationToken, reload: true);

    /// <summary>The article an id or a slug names: a slug is looked up in the other languages (it is unique per language).</summary>
    private async Task<ArticleRecord> FindLinkTargetAsync(string text, string ownLanguage, CancellationToken cancellationToken)
    {
        if (text.Length == 0)
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "Name the article to link: its id or its help-center slug, or find it by title.", "translationOf");
        if (Guid.TryParse(text, out var otherId))
            return await store.GetAsync(otherId, cancellationToken)
                ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Article {otherId} does not exist.", "translationOf");
        var slug = text.TrimEnd('/');
        slug = slug[(slug.LastIndexOf('/') + 1)..];
        var found = new List<ArticleRecord>();
        if (slug.Length is > 0 and <= MaxLinkSearch)
            foreach (var language in Crm.Service.Search.SearchLanguages.All.Where(l => l != ownLanguage))
                if (await store.GetBySlugAsync(language, Uri.UnescapeDataString(slug), cancellationToken) is { } bySlug)
                    found.Add(bySlug);
        return found.Count switch
        {
            1 => found[0],
            0 => throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"No article in another language has the id or slug '{text}'.", "translationOf"),
            _ => throw new KnowledgeBaseException(KnowledgeBaseError.Invalid,
                $"Articles in {string.Join(", ", found.Select(f => f.Language))} have the slug '{slug}'; link by id (find it by title).", "translationOf"),
        };
    }

    /// <summary>Takes this article out of its translation group (the others stay linked to each other).</summary>
    public Task<IActionResult> OnPostUnlinkAsync(CancellationToken cancellationToken) =>
        RunAsync(() => store.SetTranslationAsync(Id ?? Guid.Empty, Version, null, User.ConsoleActor(), cancellationToken), cancellationToken, reload: true);

    private void Load(ArticleRecord article)
    {
        (Version, Title, Language, Visibility, CategoryId, Tags, Body, Status, PreviewHtml, Slug) =
            (article.Version, article.Title, article.Language, article.Visibility, article.CategoryId, string.Join(", ", article.Tags), article.BodyMarkdown, article.Status, article.BodyHtml, article.Slug);
    }

    /// <summary>The live preview: sanitized HTML of the posted Markdown (anti-forgery checked like every post).</summary>
    public IActionResult OnPostPreview() =>
        Content(Body.Length > KnowledgeBaseStore.MaxBodyLength ? "" : Preview(Body), "text/html; charset=utf-8");

    /// <summary>The rendered body, or what is wrong with it (Markdown nested too deeply) as the preview's text.</summary>
    private string Preview(string body)
    {
        try
        {
            return store.Render(body);
        }
        catch (KnowledgeBaseException e)
        {
            return "<p class=\"error\">" + System.Net.WebUtility.HtmlEncode(e.Message) + "</p>";
        }
    }

    /// <summary>The upload control: stores the file as the article's attachment (the API's checks: type by content,
    /// name, size) and answers the URL and the Markdown to insert, as JSON. Anti-forgery checked like every post.</summary>
    public async Task<IActionResult> OnPostUploadAsync(IFormFile? file, [FromServices] Microsoft.Extensions.Options.IOptions<KnowledgeBaseOptions> options,
        CancellationToken cancellationToken)
    {
        if (Id is not { } id)
            return new JsonResult(new { error = "Save the article first, then attach files to it." }) { StatusCode = StatusCodes.Status409Conflict };
        if (file is null || file.Length == 0)
            return new JsonResult(new { error = "Choose a file to upload." }) { StatusCode = StatusCodes.Status422UnprocessableEntity };
        var limit = options.Value.MaxAttachmentBytes;
        if (file.Length > limit)
            return new JsonResult(new { error = $"The file is larger than {limit / 1024 / 1024.0:0.#} MB; make it smaller or link to it." }) { StatusCode = StatusCodes.Status413PayloadTooLarge };
        // An upload turn (the API's limit, review RA2) while the file is held in memory.
        using var turn = await HttpContext.RequestServices.GetRequiredService<Crm.Service.Api.UploadGate>().EnterAsync(HttpContext);
        if (turn is null)
        {
            Response.Headers.RetryAfter = "1";
            return new JsonResult(new { error = Crm.Service.Api.UploadGate.BusyMessage }) { StatusCode = StatusCodes.Status429TooManyRequests };
        }
        using var buffer = new MemoryStream((int)file.Length);
        await file.CopyToAsync(buffer, cancellationToken);
        try
        {
            var contentType = (file.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
            var attachment = await store.AddAttachmentAsync(id, file.FileName, contentType, buffer.GetBuffer().AsMemory(0, (int)buffer.Length), User.ConsoleActor(), cancellationToken);
            return new JsonResult(new { url = KnowledgeBaseStore.AttachmentPath(attachment.Id, attachment.FileName), markdown = KnowledgeBaseApi.AttachmentMarkdown(attachment) })
                { StatusCode = StatusCodes.Status201Created };
        }
        catch (KnowledgeBaseException e)
        {
            return new JsonResult(new { error = e.Message }) { StatusCode = e.Kind == KnowledgeBaseError.NotFound ? StatusCodes.Status404NotFound : StatusCodes.Status422UnprocessableEntity };
        }
    }

    public Task<IActionResult> OnPostSaveAsync(CancellationToken cancellationToken) => SaveAsync(null, cancellationToken);

    // Publish and Unpublish submit the whole form: what was typed is saved with the new status, in one version check.
    public Task<IActionResult> OnPostPublishAsync(CancellationToken cancellationToken) => SaveAsync(ArticleStatus.Published, cancellationToken);

    public Task<IActionResult> OnPostUnpublishAsync(CancellationToken cancellationToken) => SaveAsync(ArticleStatus.Draft, cancellationToken);

    // Archive takes the article out of the help center and agents' search (the index follows through the feed);
    // unarchive brings it back as a draft, to be published again on purpose.
    public Task<IActionResult> OnPostArchiveAsync(CancellationToken cancellationToken) => SaveAsync(ArticleStatus.Archived, cancellationToken);

    public Task<IActionResult> OnPostUnarchiveAsync(CancellationToken cancellationToken) => SaveAsync(ArticleStatus.Draft, cancellationToken);

    private async Task<IActionResult> SaveAsync(string? status, CancellationToken cancellationToken)
    {
        var tags = (Tags ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var slug = string.IsNullOrWhiteSpace(Slug) ? null : Slug.Trim();
        return await RunAsync(async () =>
        {
            if (Id is not { } id)
            {
                var created = await store.CreateAsync(new ArticleDraft(Language, Title, Body, Visibility, CategoryId, tags, slug), User.ConsoleActor(), cancellationToken);
                return status is null ? created : await store.SetStatusAsync(created.Id, created.Version, status, User.ConsoleActor(), cancellationToken);
            }
            var current = await store.GetAsync(id, cancellationToken) ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, "The article was deleted.");
            return await store.SaveAsync(id, Version, new ArticleDraft(current.Language, Title, Body, Visibility, CategoryId, tags, slug), status, User.ConsoleActor(), cancellationToken);
        }, cancellationToken);
    }

    /// <param name="reload">The post came from a form without the article's fields (link, unlink): on a refusal show the
    /// stored article, not empty fields.</param>
    private async Task<IActionResult> RunAsync(Func<Task<ArticleRecord>> action, CancellationToken cancellationToken, bool reload = false)
    {
        try
        {
            var article = await action();
            return Redirect($"/Kb/Edit/{article.Id}");
        }
        catch (KnowledgeBaseException e)
        {
            Categories = await store.CategoriesAsync(cancellationToken);
            // A link's refusal is shown at the link field; the rest at the top of the editor.
            if (e.Field == "translationOf")
                LinkError = e.Message;
            else
                Message = e.Message;
            // Keep what the editor typed; show the stored status and version so a reload is one click away.
            if (Id is { } id && await store.GetAsync(id, cancellationToken) is { } stored)
            {
                if (reload)
                    Load(stored);
                Status = stored.Status;
                Language = stored.Language;
                await LoadTranslationsAsync(stored, cancellationToken);
            }
            PreviewHtml = Preview(Body);
            Response.StatusCode = e.Kind switch
            {
                KnowledgeBaseError.Conflict => StatusCodes.Status409Conflict,
                KnowledgeBaseError.NotFound => StatusCodes.Status404NotFound,
                _ => StatusCodes.Status422UnprocessableEntity,
            };
            return Page();
        }
    }
}

/// <summary>Revisions, the diff of one against the one before, and restore (a new revision with the old content).</summary>
public sealed class HistoryModel(KnowledgeBaseStore store) : PageModel
{
    [FromRoute] public Guid Id { get; set; }
    [FromQuery(Name = "diff")] public int? DiffVersion { get; set; }

    public ArticleRecord Article { get; private set; } = null!;
    public IReadOnlyList<ArticleRevisionRecord> Revisions { get; private set; } = [];
    public IReadOnlyList<(RevisionDiff.Op, string)>? Diff { get; private set; }
    public string? Message { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (!await LoadAsync(cancellationToken))
            return NotFound();
        if (DiffVersion is { } version && Revisions.FirstOrDefault(r => r.Version == version) is { } after && Revisions.FirstOrDefault(r => r.Version == version - 1) is { } before)
            Diff = RevisionDiff.Lines("# " + before.Title + "\n" + before.BodyMarkdown, "# " + after.Title + "\n" + after.BodyMarkdown);
        return Page();
    }

    private async Task<bool> LoadAsync(CancellationToken cancellationToken)
    {
        if (await store.GetAsync(Id, cancellationToken) is not { } article)
            return false;
        Article = article;
        Revisions = await store.RevisionsAsync(Id, cancellationToken);
        return true;
    }

    public async Task<IActionResult> OnPostRestoreAsync(int revision, int version, CancellationToken cancellationToken)
    {
        try
        {
            await store.RestoreAsync(Id, revision, version, User.ConsoleActor(), cancellationToken);
            return Redirect($"/Kb/History/{Id}");
        }
        catch (KnowledgeBaseException e)
        {
            if (!await LoadAsync(cancellationToken))
                return NotFound();
            Message = e.Message;
            Response.StatusCode = e.Kind == KnowledgeBaseError.Conflict ? StatusCodes.Status409Conflict : StatusCodes.Status422UnprocessableEntity;
            return Page();
        }
    }
}
