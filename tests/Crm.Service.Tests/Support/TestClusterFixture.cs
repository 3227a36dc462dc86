using Crm.Service.Infrastructure;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.TestingHost;

namespace Crm.Service.Tests.Support;

/// <summary>An Orleans TestingHost cluster with the real grains and the real embedded store (SQLite file, blobs, reminders).
/// The grains' clock is a <see cref="FakeTimeProvider"/> that only moves when a test advances it; the reopen window is
/// the production default of 7 days, so lifecycle tests step over it explicitly instead of sleeping through it.</summary>
public sealed class TestClusterFixture : IAsyncLifetime
{
    public static readonly TimeSpan ReopenWindow = TimeSpan.FromDays(7);

    private readonly TempDirectory _data = new("crm-cluster");

    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    public IServiceProvider SiloServices => (Cluster.Primary as InProcessSiloHandle)!.SiloHost.Services;

    /// <summary>The grains' clock. Tests share the cluster, so they advance it and never set it back.</summary>
    public FakeTimeProvider Time => (FakeTimeProvider)SiloServices.GetRequiredService<TimeProvider>();

    public IActivationProbe Probe(IAddressable grain) => grain.AsReference<IActivationProbe>();

    /// <summary>Reads the silo's store directly, to check what grains wrote.</summary>
    public async Task<T> QueryAsync<T>(Func<CrmDbContext, Task<T>> query)
    {
        await using var db = await SiloServices.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();
        return await query(db);
    }

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.Properties["Store:DataDirectory"] = _data.Path;
        builder.Properties["Tickets:ReopenWindow"] = ReopenWindow.ToString("c", System.Globalization.CultureInfo.InvariantCulture);
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
            siloBuilder.Services.AddCrmInfrastructure();
            siloBuilder.UseSqliteReminderService();
            siloBuilder.AddGrainExtension<IActivationProbe, ActivationProbe>();
            siloBuilder.Services.AddFakeGrainClock();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<TestClusterFixture>
{
    public const string Name = "cluster";
}
