using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Tests.Changes;

/// <summary>
/// The real store (SQLite file, group-commit writer) and change-feed dispatcher on a data folder, without a silo, so
/// a test drives commits and consumers directly. Two rigs on one folder, one after the other, model a restart;
/// disposing a rig without <see cref="StopAsync"/> abandons the dispatcher mid-work, as a crash would.
/// </summary>
internal sealed class FeedRig : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private bool _started;

    private FeedRig(ServiceProvider services) => _services = services;

    public static async Task<FeedRig> StartAsync(string dataDirectory, IEnumerable<IChangeConsumer> consumers, IDictionary<string, string?>? settings = null, TimeProvider? clock = null)
    {
        var configuration = new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = dataDirectory,
            ["ChangeFeed:PollInterval"] = "00:00:00.200",
            ["ChangeFeed:FirstRetryDelay"] = "00:00:00.050",
            ["ChangeFeed:MaxRetryDelay"] = "00:00:00.200",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            configuration[key] = value;
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(configuration).Build());
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddCrmInfrastructure();
        if (clock is not null)
            services.AddSingleton(clock);
        foreach (var consumer in consumers)
            services.AddSingleton(consumer);
        var rig = new FeedRig(services.BuildServiceProvider());
        await rig.Dispatcher.StartAsync(CancellationToken.None);
        rig._started = true;
        return rig;
    }

    private ChangeFeedDispatcher Dispatcher => _services.GetRequiredService<ChangeFeedDispatcher>();

    public ICrmStore Store => _services.GetRequiredService<ICrmStore>();

    public IChangeFeed Feed => _services.GetRequiredService<IChangeFeed>();

    private SqliteChangeFeed SqliteFeed => _services.GetRequiredService<SqliteChangeFeed>();

    public Task<long> CursorAsync(string consumer) => SqliteFeed.ReadCursorAsync(consumer, CancellationToken.None);

    public Task SaveCursorAsync(string consumer, long sequence) => SqliteFeed.SaveCursorAsync(consumer, sequence, CancellationToken.None);

    /// <summary>How often the consumer's cursor was rewound, and a save that only goes through when it was not rewound since (review LH2).</summary>
    public Task<long> RewindsAsync(string consumer) => SqliteFeed.RewindsAsync(consumer, CancellationToken.None);

    public Task<bool> SaveCursorAsync(string consumer, long sequence, long rewinds) => SqliteFeed.SaveCursorAsync(consumer, sequence, rewinds, CancellationToken.None);

    public async Task<int> PruneAsync(IReadOnlyCollection<string> consumers, DateTimeOffset committedBefore) =>
        (await SqliteFeed.PruneAsync(consumers, committedBefore, CancellationToken.None)).Deleted;

    public async Task<(int Deleted, IReadOnlyList<string> HeldBackBy)> PruneReportingAsync(IReadOnlyCollection<string> consumers, DateTimeOffset committedBefore)
    {
        var (deleted, heldBackBy) = await SqliteFeed.PruneAsync(consumers, committedBefore, CancellationToken.None);
        return (deleted, heldBackBy);
    }

    /// <summary>Prunes as the dispatcher does, rebuild holds not refreshed since <paramref name="holdsStaleBefore"/> removed.</summary>
    public Task<PruneResult> PruneWithHoldsAsync(IReadOnlyCollection<string> consumers, DateTimeOffset committedBefore, DateTimeOffset holdsStaleBefore) =>
        SqliteFeed.PruneAsync(consumers, committedBefore, CancellationToken.None, holdsStaleBefore);

    public ChangeConsumerGates Gates => _services.GetRequiredService<ChangeConsumerGates>();

    /// <summary>Commits <paramref name="count"/> write sets of one new ticket each, all at once so the store groups them.</summary>
    public Task CommitTicketsAsync(int count) =>
        Task.WhenAll(Enumerable.Range(0, count).Select(_ => Store.CommitAsync(new WriteSet().Insert(new TicketRecord
        {
            Number = Random.Shared.NextInt64(1, long.MaxValue),
            Subject = "feed",
        }))));

    public async Task<List<long>> SequencesAsync()
    {
        await using var db = await _services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();
        return await db.Changes.OrderBy(c => c.Sequence).Select(c => c.Sequence).ToListAsync();
    }

    /// <summary>A clean stop, as the host does it.</summary>
    public async Task StopAsync()
    {
        if (_started)
            await Dispatcher.StopAsync(CancellationToken.None);
        _started = false;
    }

    public async ValueTask DisposeAsync() => await _services.DisposeAsync();
}
