using Crm.Service.FullTextSearch;
using Crm.Service.KnowledgeBase;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Changes;

/// <summary>Settings for tests where node A prunes the change feed at once and node B, on the same store, reads it late.</summary>
internal static class PruningNodes
{
    /// <summary>Node A: a retention as short as start-up validation allows (retention >= 2 x (poll + gather + longest retry wait)).</summary>
    public static Dictionary<string, string?> Pruning(params (string Key, string? Value)[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ChangeFeed:Retention"] = "00:00:00.200",
            ["ChangeFeed:PollInterval"] = "00:00:00.050",
            ["ChangeFeed:GatherDelay"] = "00:00:00",
            ["ChangeFeed:MaxRetryDelay"] = "00:00:00.050",
            ["ChangeFeed:PruneInterval"] = "00:00:00.050",
        };
        foreach (var (key, value) in more)
            settings[key] = value;
        return settings;
    }

    /// <summary>Node B: its own search directories under <paramref name="directory"/>; it reads the feed only when its
    /// own commit wakes it (an hour's poll, so a retention of three).</summary>
    public static Dictionary<string, string?> Late(string directory) => Pruning(
        ("ChangeFeed:PollInterval", "01:00:00"), ("ChangeFeed:Retention", "03:00:00"),
        ("Search:LuceneDirectory", Path.Combine(directory, "search")),
        ("Search:RecordsLuceneDirectory", Path.Combine(directory, "search-records")));

    /// <summary>Waits until the node's two search indexes finished the rebuild they start with (an empty index on a
    /// pruned feed is rebuilt); their swap wakes the node's consumers, which must be over before a test's own step.</summary>
    public static Task StartRebuildsDoneAsync(CrmApp node)
    {
        IndexRebuildService[] rebuilds = [node.Services.GetRequiredService<RecordReindexService>(), node.Services.GetRequiredService<ReindexService>()];
        return Eventually.WaitForAsync(() => Task.FromResult(rebuilds.Count(r => r.Progress.State == "completed")), count => count == 2, TimeSpan.FromSeconds(60),
            "node B's search indexes to be rebuilt at its start");
    }
}
