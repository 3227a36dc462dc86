namespace Crm.Connectors.Abstractions;

/// <summary>
/// Whether anyone can answer live: a chat widget shows its offline form (a ticket answered by email) when no agent of
/// its team is online. The default registration (<see cref="AlwaysAvailable"/>) says yes; the console's presence
/// replaces it.
/// </summary>
public interface IAgentAvailability
{
    /// <param name="teamId">The widget's team; null: any agent.</param>
    Task<bool> AnyAgentOnlineAsync(string? teamId, CancellationToken cancellationToken = default);
}

/// <summary>The default until presence is known: agents are assumed online, so visitors always get the live chat.</summary>
public sealed class AlwaysAvailable : IAgentAvailability
{
    public Task<bool> AnyAgentOnlineAsync(string? teamId, CancellationToken cancellationToken = default) => Task.FromResult(true);
}

/// <summary>A knowledge-base article offered to a customer while they type a question.</summary>
public sealed record ArticleSuggestion(string Title, string Url, string? Snippet);

/// <summary>
/// Suggests knowledge-base articles for a question being typed (the web chat widget asks while the visitor types and
/// shows at most three). The default (<see cref="NoArticleSuggestions"/>) returns nothing until the knowledge base lands.
/// </summary>
public interface IArticleSuggestions
{
    /// <param name="language">"en", "zh" …: the visitor's language.</param>
    Task<IReadOnlyList<ArticleSuggestion>> SuggestAsync(string question, string? language, int max, CancellationToken cancellationToken = default);
}

public sealed class NoArticleSuggestions : IArticleSuggestions
{
    public Task<IReadOnlyList<ArticleSuggestion>> SuggestAsync(string question, string? language, int max, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<ArticleSuggestion>>([]);
}
