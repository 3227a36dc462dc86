using Microsoft.Extensions.Options;

namespace Crm.Connectors.WebChat;

/// <summary>
/// The visitor connections open on this node, counted per visitor, per client address and in all. A hub connection
/// is one HTTP request for its whole life (a WebSocket, or a chain of long polls), so the edge's in-flight limits
/// leave it out (they would let a few hundred open widgets stop the whole service); these caps bound connections
/// instead, and a refusal says why in words.
/// </summary>
public sealed class VisitorConnections(IOptions<WebChatOptions> options)
{
    private readonly Dictionary<string, int> _open = new(StringComparer.Ordinal);
    private int _total;

    /// <summary>Null when the connection may open (count it, and <see cref="Close"/> it once); else the refusal.</summary>
    public string? TryOpen(Visitor visitor, string address)
    {
        var o = options.Value;
        lock (_open)
        {
            if (_total >= o.MaxConnections)
                return "busy: The chat has too many visitors right now. Please try again in a few minutes.";
            if (Count(AddressKey(address)) >= o.MaxConnectionsPerAddress)
                return "too-many-connections: Too many chats are open from your network. Please close some chat windows or try again later.";
            if (Count(VisitorKey(visitor)) >= o.MaxConnectionsPerVisitor)
                return "too-many-connections: The chat is open in too many tabs. Please close some of them and try again.";
            _total++;
            _open[AddressKey(address)] = Count(AddressKey(address)) + 1;
            _open[VisitorKey(visitor)] = Count(VisitorKey(visitor)) + 1;
            return null;
        }
    }

    public void Close(Visitor visitor, string address)
    {
        lock (_open)
        {
            _total--;
            Decrement(AddressKey(address));
            Decrement(VisitorKey(visitor));
        }
    }

    internal int Total
    {
        get
        {
            lock (_open)
                return _total;
        }
    }

    private int Count(string key) => _open.TryGetValue(key, out var n) ? n : 0;

    private void Decrement(string key)
    {
        if (Count(key) <= 1)
            _open.Remove(key);
        else
            _open[key]--;
    }

    private static string AddressKey(string address) => "a:" + address;

    private static string VisitorKey(Visitor visitor) => "v:" + visitor.WidgetId + "/" + visitor.VisitorId;
}
