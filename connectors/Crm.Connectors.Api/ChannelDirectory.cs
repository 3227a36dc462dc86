using System.Collections.Concurrent;
using Crm.Service.Contracts;

namespace Crm.Connectors.Api;

/// <summary>Channel settings for the inbound hot path, kept for a few seconds so a burst does not make a grain call per
/// request. A change (a new secret, a disabled channel) is seen within <see cref="Lifetime"/>.</summary>
internal sealed class ChannelDirectory(IGrainFactory grains, TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, (ChannelAccountSnapshot? Channel, DateTimeOffset Until)> _cache = new(StringComparer.Ordinal);

    public async ValueTask<ChannelAccountSnapshot?> FindAsync(string channelId)
    {
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(channelId, out var entry) && entry.Until > now)
            return entry.Channel;
        var channel = await grains.GetGrain<IChannelAccountGrain>(channelId).GetAsync();
        // Unknown ids are not cached: anyone can send them, and they would fill the cache.
        if (channel is not null)
            _cache[channelId] = (channel, now + Lifetime);
        return channel;
    }
}
