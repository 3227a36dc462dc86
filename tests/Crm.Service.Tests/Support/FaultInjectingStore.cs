using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Crm.Service.Tests.Support;

/// <summary>The real store, except that a commit matching <see cref="FailWhen"/> fails (once) before anything is written,
/// as a full disk or a lost database connection would.</summary>
internal sealed class FaultInjectingStore(ICrmStore inner) : DelegatingCrmStore(inner)
{
    private Func<WriteSet, bool>? _failWhen;
    private Func<WriteSet, bool>? _alwaysFailWhen;
    private int _refused;

    public void FailNextCommitWhere(Func<WriteSet, bool> predicate) => Interlocked.Exchange(ref _failWhen, predicate);

    /// <summary>Every commit matching the predicate fails, until cleared with null.</summary>
    public void FailEveryCommitWhere(Func<WriteSet, bool>? predicate) => Interlocked.Exchange(ref _alwaysFailWhen, predicate);

    /// <summary>How many commits were refused so far.</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>Runs before each commit (after the failure check), e.g. to look at what is already stored.</summary>
    public Func<WriteSet, Task>? BeforeCommit { get; set; }

    public override async Task CommitAsync(WriteSet writes, CancellationToken cancellationToken = default)
    {
        if ((Volatile.Read(ref _failWhen) is { } predicate && predicate(writes) && Interlocked.CompareExchange(ref _failWhen, null, predicate) == predicate)
            || (Volatile.Read(ref _alwaysFailWhen) is { } always && always(writes)))
        {
            Interlocked.Increment(ref _refused);
            throw new IOException("Injected commit failure: disk full.");
        }
        if (BeforeCommit is { } before)
            await before(writes);
        await base.CommitAsync(writes, cancellationToken);
    }

}

internal static class FaultInjectingStoreExtensions
{
    /// <summary>Puts a <see cref="FaultInjectingStore"/> in front of the registered store.</summary>
    public static IServiceCollection AddFaultInjectingStore(this IServiceCollection services)
    {
        var real = services.Single(d => d.ServiceType == typeof(ICrmStore));
        services.Remove(real);
        services.AddSingleton(provider => new FaultInjectingStore((ICrmStore)ActivatorUtilities.CreateInstance(provider, real.ImplementationType!)));
        return services.AddSingleton<ICrmStore>(provider => provider.GetRequiredService<FaultInjectingStore>());
    }
}

/// <summary>A one-silo test cluster on the real embedded store behind a <see cref="FaultInjectingStore"/>.</summary>
public sealed class FaultyStoreClusterFixture : IAsyncLifetime
{
    private readonly TempDirectory _data = new("crm-faulty");

    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    private IServiceProvider SiloServices => (Cluster.Primary as InProcessSiloHandle)!.SiloHost.Services;

    internal FaultInjectingStore Store => SiloServices.GetRequiredService<FaultInjectingStore>();

    public async Task<T> QueryAsync<T>(Func<CrmDbContext, Task<T>> query)
    {
        await using var db = await SiloServices.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();
        return await query(db);
    }

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.Properties["Store:DataDirectory"] = _data.Path;
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        _data.Dispose();
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var services = siloBuilder.Services;
            services.AddCrmInfrastructure();
            siloBuilder.UseSqliteReminderService();
            services.AddFaultInjectingStore();
        }
    }
}
