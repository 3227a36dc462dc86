using Crm.Service.Auth;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.KnowledgeBase;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Kb;

/// <summary>Articles with filters (knowledge editors and admins; the folder's policy).</summary>
public sealed class IndexModel(KnowledgeBaseStore store) : PageModel
{
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

    public string? Status { get; private set; }
    public string PreviewHtml { get; private set; } = "";
    public string? Message { get; private set; }
    public IReadOnlyList<CategoryRecord> Categories { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        Categories = await store.CategoriesAsync(cancellationToken);
        if (Id is not { } id)
            return Page();
        if (await store.GetAsync(id, cancellationToken) is not { } article)
            return NotFound();
        Load(article);
        return Page();
    }

    private void Load(ArticleRecord article)
    {
        (Version, Title, Language, Visibility, CategoryId, Tags, Body, Status, PreviewHtml) =
            (article.Version, article.Title, article.Language, article.Visibility, article.CategoryId, string.Join(", ", article.Tags), article.BodyMarkdown, article.Status, article.BodyHtml);
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

    public Task<IActionResult> OnPostSaveAsync(CancellationToken cancellationToken) => SaveAsync(null, cancellationToken);

    // Publish and Unpublish submit the whole form: what was typed is saved with the new status, in one version check.
    public Task<IActionResult> OnPostPublishAsync(CancellationToken cancellationToken) => SaveAsync(ArticleStatus.Published, cancellationToken);

    public Task<IActionResult> OnPostUnpublishAsync(CancellationToken cancellationToken) => SaveAsync(ArticleStatus.Draft, cancellationToken);

    private async Task<IActionResult> SaveAsync(string? status, CancellationToken cancellationToken)
    {
        var tags = (Tags ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return await RunAsync(async () =>
        {
            if (Id is not { } id)
            {
                var created = await store.CreateAsync(new ArticleDraft(Language, Title, Body, Visibility, CategoryId, tags), User.ConsoleActor(), cancellationToken);
                return status is null ? created : await store.SetStatusAsync(created.Id, created.Version, status, User.ConsoleActor(), cancellationToken);
            }
            var current = await store.GetAsync(id, cancellationToken) ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, "The article was deleted.");
            return await store.SaveAsync(id, Version, new ArticleDraft(current.Language, Title, Body, Visibility, CategoryId, tags), status, User.ConsoleActor(), cancellationToken);
        }, cancellationToken);
    }

    private async Task<IActionResult> RunAsync(Func<Task<ArticleRecord>> action, CancellationToken cancellationToken)
    {
        try
        {
            var article = await action();
            return Redirect($"/Kb/Edit/{article.Id}");
        }
        catch (KnowledgeBaseException e)
        {
            Categories = await store.CategoriesAsync(cancellationToken);
            Message = e.Message;
            // Keep what the editor typed; show the stored status and version so a reload is one click away.
            if (Id is { } id && await store.GetAsync(id, cancellationToken) is { } stored)
                Status = stored.Status;
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
