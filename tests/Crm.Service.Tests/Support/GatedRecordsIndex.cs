using Crm.Service.Search;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Support;

/// <summary>Faults and holds for the records search index of a test app (<see cref="GatedRecordsIndex.Wrap"/>).</summary>
internal sealed class WriteGate
{
    /// <summary>While set, the index's writes fail.</summary>
    public volatile bool Closed;
    public int Refused;
    /// <summary>Message documents written (KW6 counts them).</summary>
    public int MessagesUpserted;
    /// <summary>1: the next rebuild fails as it begins.</summary>
    public int FailNextRebuild;
    /// <summary>While set, every rebuild fails as it begins.</summary>
    public volatile bool FailRebuilds;
    /// <summary>When set, a rebuild waits after its pages are written (before it holds the indexer and swaps) until this completes.</summary>
    public volatile TaskCompletionSource? HoldBeforeSwap;
    /// <summary>Completed when a rebuild reaches <see cref="HoldBeforeSwap"/>.</summary>
    public readonly TaskCompletionSource RebuildHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>When set, a write waits after it reached the index (before its batch's cursor is saved) until this completes.</summary>
    public volatile TaskCompletionSource? HoldAfterUpsert;
    /// <summary>Completed when a write reaches <see cref="HoldAfterUpsert"/>.</summary>
    public readonly TaskCompletionSource UpsertHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>When set, a rebuild's swap waits (after the rewind, before the swap itself) until this completes.</summary>
    public volatile TaskCompletionSource? HoldInComplete;
    /// <summary>Completed when a rebuild's swap reaches <see cref="HoldInComplete"/>.</summary>
    public readonly TaskCompletionSource CompleteHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>1: the next rebuild's swap fails (after the indexer was rewound).</summary>
    public int FailNextComplete;
    public int RebuildsBegun;
    public int RebuildsCompleted;
    /// <summary>Rebuilds begun and not yet disposed, and the most there were at once (over every app sharing this gate).</summary>
    public int ActiveRebuilds;
    public int MostActiveRebuilds;

    public void Check()
    {
        if (Closed)
        {
            Interlocked.Increment(ref Refused);
            throw new IOException("simulated: the records index cannot be written");
        }
    }
}

/// <summary>Wraps the records index registered by the app so a <see cref="WriteGate"/> can fail or hold it.</summary>
internal sealed class GatedRecordsIndex(ISearchIndex inner, WriteGate gate) : ISearchIndex, IDisposable
{
    public static void Wrap(IServiceCollection services, WriteGate gate)
    {
        var engine = services.Last(d => d.ServiceType == typeof(ISearchIndex) && d.IsKeyedService && Equals(d.ServiceKey, SearchExtensions.RecordsIndex));
        services.Remove(engine);
        services.AddKeyedSingleton<ISearchIndex>(SearchExtensions.RecordsIndex, (p, key) => new GatedRecordsIndex((ISearchIndex)engine.KeyedImplementationFactory!(p, key), gate));
    }

    public void Dispose() => (inner as IDisposable)?.Dispose();
    public string Engine => inner.Engine;
    public string Identity => inner.Identity;
    public async Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default)
    {
        gate.Check();
        Interlocked.Add(ref gate.MessagesUpserted, documents.Count(d => d.Kind == SearchKinds.Message));
        await inner.UpsertAsync(documents, cancellationToken);
        if (gate.HoldAfterUpsert is { } hold)
        {
            gate.UpsertHeld.TrySetResult();
            await hold.Task.WaitAsync(cancellationToken);
        }
    }
    public Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default)
    {
        gate.Check();
        return inner.DeleteAsync(ids, cancellationToken);
    }
    public Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default) => inner.SearchAsync(query, cancellationToken);
    public Task<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);
    public Task<IReadOnlyDictionary<string, string>?> IndexedTeamsAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default) => inner.IndexedTeamsAsync(ids, cancellationToken);
    public Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default) => inner.AppliedSequenceAsync(cancellationToken);
    public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => inner.MarkAppliedAsync(sequence, cancellationToken);
    public Task OptimizeAsync(CancellationToken cancellationToken = default) => inner.OptimizeAsync(cancellationToken);
    public async Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref gate.RebuildsBegun);
        if (Interlocked.Exchange(ref gate.FailNextRebuild, 0) == 1 || gate.FailRebuilds)
            throw new IOException("simulated: the new records index cannot be created");
        var active = Interlocked.Increment(ref gate.ActiveRebuilds);
        int most;
        while (active > (most = Volatile.Read(ref gate.MostActiveRebuilds)) && Interlocked.CompareExchange(ref gate.MostActiveRebuilds, active, most) != most)
        {
        }
        try
        {
            return new Rebuild(await inner.BeginRebuildAsync(cancellationToken), gate);
        }
        catch
        {
            Interlocked.Decrement(ref gate.ActiveRebuilds);
            throw;
        }
    }

    private sealed class Rebuild(IIndexRebuild inner, WriteGate gate) : IIndexRebuild
    {
        public Task AddAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default) => inner.AddAsync(documents, cancellationToken);
        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => inner.MarkAppliedAsync(sequence, cancellationToken);
        public async Task OptimizeAsync(CancellationToken cancellationToken = default)
        {
            if (gate.HoldBeforeSwap is { } hold)
            {
                gate.RebuildHeld.TrySetResult();
                await hold.Task.WaitAsync(cancellationToken);
            }
            await inner.OptimizeAsync(cancellationToken);
        }
        public async Task CompleteAsync(CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref gate.FailNextComplete, 0) == 1)
                throw new IOException("simulated: the rebuilt records index cannot be swapped in");
            if (gate.HoldInComplete is { } hold)
            {
                gate.CompleteHeld.TrySetResult();
                await hold.Task.WaitAsync(cancellationToken);
            }
            await inner.CompleteAsync(cancellationToken);
            Interlocked.Increment(ref gate.RebuildsCompleted);
        }
        public ValueTask DisposeAsync()
        {
            Interlocked.Decrement(ref gate.ActiveRebuilds);
            return inner.DisposeAsync();
        }
    }
}
