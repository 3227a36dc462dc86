using Crm.Service.Infrastructure;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Crm.Service.Tests.Support;

/// <summary>An Orleans TestingHost cluster with the real grains and the real embedded store (SQLite file, blobs, reminders).</summary>
public sealed class TestClusterFixture : IAsyncLifetime
{
    private readonly TempDirectory _data = new("crm-cluster");

    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    public IServiceProvider SiloServices => (Cluster.Primary as InProcessSiloHandle)!.SiloHost.Services;

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
        builder.Properties["Tickets:ReopenWindow"] = "00:00:03";
        builder.Properties["Tickets:ReminderPeriod"] = "00:00:01";
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
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<TestClusterFixture>
{
    public const string Name = "cluster";
}
