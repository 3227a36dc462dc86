using System.Data.Common;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Changes;

/// <summary>
/// Only interceptors registered as <see cref="ICrmStoreInterceptor"/> join the store's contexts: one any library puts
/// into the container under the plain <see cref="IInterceptor"/> would otherwise see every command, channel secrets
/// and the Identity tables included (review LE5).
/// </summary>
public sealed class StoreInterceptorTests
{
    private class CountingInterceptor : DbCommandInterceptor
    {
        public int Readers;

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Readers);
            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    private sealed class StoreCountingInterceptor : CountingInterceptor, ICrmStoreInterceptor;

    [Fact]
    public async Task A_plain_interceptor_in_the_container_does_not_reach_the_store_and_a_marked_one_does()
    {
        using var data = new TempDirectory();
        var plain = new CountingInterceptor();
        var marked = new StoreCountingInterceptor();
        await using var app = new CrmApp(data.Path, services: services => services
            .AddSingleton<IInterceptor>(plain)
            .AddSingleton<ICrmStoreInterceptor>(marked));

        await app.QueryAsync(db => db.ChangeCursors.CountAsync());

        Assert.True(marked.Readers > 0, "the interceptor registered as ICrmStoreInterceptor must see the store's commands");
        Assert.Equal(0, plain.Readers);
    }
}
