using System.Net;
using System.Net.Sockets;

namespace Crm.Service.Tests.Email;

/// <summary>
/// A loopback TCP relay in front of a real server: counts the bytes the server sends (what a client downloaded) and
/// can cut every open connection, as a network failure or a server-side kick would.
/// </summary>
internal sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(TcpClient Client, TcpClient Server)> _open = [];
    private readonly Task _accepting;
    private long _downloaded;

    public TcpRelay(int targetPort)
    {
        _target = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Bytes the server sent to clients through the relay since it started.</summary>
    public long Downloaded => Interlocked.Read(ref _downloaded);

    /// <summary>Bytes downloaded once the next cut happens: set to cut every connection after that many server bytes.</summary>
    public long? CutAfterDownloaded { get; set; }

    public int Cuts { get; private set; }

    private readonly System.Text.StringBuilder _uploaded = new();

    /// <summary>What clients sent through the relay (as ASCII, the first megabyte): the commands an IMAP client issued.</summary>
    public string Uploaded
    {
        get
        {
            lock (_uploaded)
                return _uploaded.ToString();
        }
    }

    /// <summary>Closes every open connection at once (the client sees a reset or an end of stream).</summary>
    public void CutAll()
    {
        lock (_open)
        {
            foreach (var (client, server) in _open)
            {
                try
                {
                    // A reset, not a polite close: what a dropped network or a killed server process looks like.
                    client.Client.LingerState = new LingerOption(true, 0);
                }
                catch (ObjectDisposedException)
                {
                }
                client.Dispose();
                server.Dispose();
            }
            _open.Clear();
            Cuts++;
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            var server = new TcpClient();
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            }
            catch (Exception)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }
            lock (_open)
                _open.Add((client, server));
            _ = PumpAsync(client.GetStream(), server.GetStream(), countDownload: false);
            _ = PumpAsync(server.GetStream(), client.GetStream(), countDownload: true);
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool countDownload)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                    break;
                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                if (!countDownload)
                    lock (_uploaded)
                        if (_uploaded.Length < 1024 * 1024)
                            _uploaded.Append(System.Text.Encoding.ASCII.GetString(buffer, 0, read));
                if (countDownload && Interlocked.Add(ref _downloaded, read) >= CutAfterDownloaded)
                {
                    CutAfterDownloaded = null;
                    CutAll();
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or SocketException)
        {
            // A cut or a closed peer ends the pump.
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CutAll();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
