using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Crm.Service.Tests.Support;

/// <summary>
/// A minimal SMTP server on loopback (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that counts the mails whose
/// DATA it received in full and answers their 250 (and QUIT's 221) only when <see cref="HoldDataReply"/>
/// (<see cref="HoldQuitReply"/>) lets it: a mail server still scanning a large mail, or one whose answer is lost, as
/// the real Postfix cannot be made to behave on demand.
/// </summary>
internal sealed class FakeSmtpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _firstData = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _quitReleased = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _firstQuit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _received;

    public FakeSmtpServer()
    {
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>When true (the default), the 250 for a received DATA waits for <see cref="Release"/>.</summary>
    public bool HoldDataReply { get; init; } = true;

    /// <summary>Mails whose whole DATA payload (up to the final dot) arrived.</summary>
    public int Received => Volatile.Read(ref _received);

    /// <summary>Completes when the first mail's DATA has arrived in full.</summary>
    public Task FirstDataReceived => _firstData.Task;

    /// <summary>When true, the 221 for QUIT waits for <see cref="ReleaseQuit"/> (a server slow to close).</summary>
    public bool HoldQuitReply { get; init; }

    /// <summary>Completes when the first QUIT arrives.</summary>
    public Task FirstQuitReceived => _firstQuit.Task;

    public void ReleaseQuit() => _quitReleased.TrySetResult();

    /// <summary>The first mail's connection is closed right after its whole DATA arrived, without an answer.</summary>
    public bool DropAfterData { get; init; }

    /// <summary>The first mail's connection is closed after the first line of its DATA, long before the final dot.</summary>
    public bool DropDuringData { get; init; }

    private int _dataCommands;

    /// <summary>Lets every held 250 go out.</summary>
    public void Release() => _released.TrySetResult();

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = Task.Run(() => ServeAsync(client));
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.Latin1, false, 8192, leaveOpen: true);
                async Task SendAsync(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), _stop.Token);
                await SendAsync("220 fake.example.test ESMTP");
                while (await reader.ReadLineAsync(_stop.Token) is { } line)
                {
                    var verb = line.Split(' ', 2)[0].ToUpperInvariant();
                    switch (verb)
                    {
                        case "EHLO":
                            await SendAsync("250-fake.example.test");
                            await SendAsync("250 AUTH PLAIN");
                            break;
                        case "HELO":
                            await SendAsync("250 fake.example.test");
                            break;
                        case "AUTH":
                            if (line.Split(' ').Length < 3)
                            {
                                await SendAsync("334 ");
                                await reader.ReadLineAsync(_stop.Token);
                            }
                            await SendAsync("235 2.7.0 Authentication successful");
                            break;
                        case "MAIL" or "RCPT" or "RSET" or "NOOP":
                            await SendAsync("250 2.0.0 Ok");
                            break;
                        case "DATA":
                            await SendAsync("354 End data with <CR><LF>.<CR><LF>");
                            var first = Interlocked.Increment(ref _dataCommands) == 1;
                            if (first && DropDuringData)
                            {
                                // A small window, so the client is still writing when the connection goes.
                                client.ReceiveBufferSize = 16 * 1024;
                                await reader.ReadLineAsync(_stop.Token);
                                client.Client.Close(0);
                                return;
                            }
                            while (await reader.ReadLineAsync(_stop.Token) is { } data && data != ".")
                            {
                            }
                            Interlocked.Increment(ref _received);
                            _firstData.TrySetResult();
                            if (first && DropAfterData)
                            {
                                client.Client.Close(0);
                                return;
                            }
                            if (HoldDataReply)
                                await _released.Task.WaitAsync(_stop.Token);
                            await SendAsync("250 2.0.0 Ok: queued");
                            break;
                        case "QUIT":
                            _firstQuit.TrySetResult();
                            if (HoldQuitReply)
                                await _quitReleased.Task.WaitAsync(_stop.Token);
                            await SendAsync("221 2.0.0 Bye");
                            return;
                        default:
                            await SendAsync("502 5.5.2 Error: command not recognized");
                            break;
                    }
                }
            }
            catch (Exception)
            {
                // The client went away (our sender gave up waiting), or the server stops.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _released.TrySetResult();
        _quitReleased.TrySetResult();
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (Exception)
        {
        }
        _stop.Dispose();
    }
}
