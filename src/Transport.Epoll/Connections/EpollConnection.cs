using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using EpollTransport.Interop;
using EpollTransport.Posix;
using EpollTransport.Reactor;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace EpollTransport.Connections;

/// <summary>
/// One accepted socket, owned by one reactor. Kestrel sees a <see cref="ConnectionContext"/>; the reactor sees an
/// <see cref="IEpollHandler"/>. Everything but the public <see cref="ConnectionContext"/> surface and the write-through
/// send runs on the reactor thread, so that I/O state needs no locks; the write side is handed between the reactor and
/// a flushing thread by one atomic word (see <c>.Write.cs</c>).
/// </summary>
/// <remarks>
/// Split by concern: this file holds the state and lifetime; <c>.Read.cs</c> receiving into the input pipe,
/// <c>.Write.cs</c> sending from the output pipe, <c>.Close.cs</c> closing and aborting, <c>.Features.cs</c>
/// the feature collection.
/// </remarks>
internal sealed partial class EpollConnection : ConnectionContext, IEpollHandler, IThreadPoolWorkItem
{
    private readonly int _fd;
    private readonly EpollReactor _reactor;
    private readonly ReactorGroup _group;
    private readonly ILogger _logger;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly ConnectionOutput _outputWriter;
    private readonly int _readBudget;
    private readonly EpollSendMode _sendMode;
    private readonly int _minReceiveSize;
    private readonly bool _reportsQueue;
    private readonly bool _unixStream;
    private readonly CancellationTokenSource _closedTokenSource = new();
    private readonly TaskCompletionSource _closedCompletion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action _onOutputReadable;
    private Action? _onInputFlushed;
    private string? _connectionId;
    private IDictionary<object, object?>? _items;

    // Reactor-thread state.
    private volatile bool _startRequested;
    private bool _readable;
    /// <summary>EPOLLHUP or EPOLLERR came: a reset or error waits behind whatever is still queued.</summary>
    private bool _hangUp;
    private bool _writable = true;
    private bool _started;
    private ReadState _readState;

    private enum ReadState : byte
    {
        /// <summary>Reads when readable.</summary>
        Active,

        /// <summary>The application has <c>MaxReadBufferSize</c> unread; waiting for it to drain.</summary>
        Paused,

        /// <summary>FIN, error, close, or the application completed its input.</summary>
        Done,
    }

    /// <summary>Wraps an accepted fd. <paramref name="reportsQueue"/>: <c>TCP_INQ</c> is set on it.</summary>
    /// <param name="fd">The accepted, non-blocking socket; the connection owns it from here on.</param>
    /// <param name="localEndPoint">The socket's address, read before the fd was handed to a reactor.</param>
    /// <param name="remoteEndPoint">The peer's address, read before the fd was handed to a reactor.</param>
    /// <param name="reactor">The reactor that serves it.</param>
    /// <param name="group">The reactor group, told when the connection is gone.</param>
    /// <param name="options">The transport's options.</param>
    /// <param name="logger">The transport's logger.</param>
    /// <param name="reportsQueue"><c>TCP_INQ</c> is set: each recvmsg says what is left in the receive queue.</param>
    /// <param name="unixStream">A Unix stream socket: a receive shorter than its buffer emptied the queue.</param>
    public EpollConnection(int fd, EndPoint? localEndPoint, EndPoint? remoteEndPoint, EpollReactor reactor, ReactorGroup group,
        EpollTransportOptions options, ILogger logger, bool reportsQueue, bool unixStream = false)
    {
        _unixStream = unixStream;
        _fd = fd;
        LocalEndPoint = localEndPoint;
        RemoteEndPoint = remoteEndPoint;
        _reportsQueue = reportsQueue;
        _reactor = reactor;
        _group = group;
        _logger = logger;
        _readBudget = options.ReadBudgetPerTurn;
        _sendMode = options.SendMode;
        _writeThrough = _sendMode == EpollSendMode.WriteThrough;

        var pipeOptions = reactor.PipeOptionsFor(options);
        _minReceiveSize = pipeOptions.MinimumReceiveSize;
        _input = new Pipe(pipeOptions.Input);
        _output = new Pipe(pipeOptions.Output);

        _outputWriter = new ConnectionOutput(_output.Writer, _output.Reader, EnqueueRegion,
            pipeOptions.Output.PauseWriterThreshold, pipeOptions.Output.ResumeWriterThreshold,
            options.UnsafePreferInlineScheduling ? reactor : PipeScheduler.ThreadPool);
        Transport = new DuplexPipe(_input.Reader, _outputWriter);
        ConnectionClosed = _closedTokenSource.Token;
        _onOutputReadable = OnOutputReadable;
    }

    public EpollReactor Reactor => _reactor;

    public MemoryPool<byte> MemoryPool => _reactor.MemoryPool;

    public override string ConnectionId
    {
        get => Volatile.Read(ref _connectionId) ?? CreateConnectionId();
        set => Volatile.Write(ref _connectionId, value);
    }

    public override IDuplexPipe Transport { get; set; }

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    public override CancellationToken ConnectionClosed { get; set; }

    ulong IEpollHandler.Token { get; set; }

    bool IEpollHandler.IsReady { get; set; }

    bool IEpollHandler.IsSendQueued { get; set; }

    /// <summary>Registers the fd with the reactor. Reactor thread.</summary>
    public void Register()
    {
        var result = _reactor.Register(this, _fd);
        if (!result.IsSuccess)
        {
            EpollTransportLog.RegisterError(_logger, _reactor.Id, result.ToString());
            Close(new ConnectionAbortedException($"Registering the connection with epoll failed: {result}."), reset: true);
        }
    }

    /// <summary>Kestrel took the connection: start reading and sending.</summary>
    public void Start()
    {
        _startRequested = true;
        _reactor.Schedule(static state => ((EpollConnection)state!).StartOnReactor(), this);
    }

    private void StartOnReactor()
    {
        if (_closed)
        {
            return;
        }
        _started = true;
        StartOutputRead();
        if (_readable && _readState == ReadState.Active)
        {
            _reactor.SetReady(this);
        }
    }

    bool IEpollHandler.OnEvents(uint events)
    {
        if ((events & (EpollInterop.EPOLLIN | EpollInterop.EPOLLRDHUP | EpollInterop.EPOLLHUP | EpollInterop.EPOLLERR)) != 0)
        {
            _readable = true;
        }
        if ((events & (EpollInterop.EPOLLHUP | EpollInterop.EPOLLERR)) != 0)
        {
            // A reset (or error) is pending: TCP_INQ's "queue empty" no longer means the next recv would be EAGAIN.
            _hangUp = true;
        }
        if ((events & (EpollInterop.EPOLLOUT | EpollInterop.EPOLLHUP | EpollInterop.EPOLLERR)) != 0 && !_writable)
        {
            _writable = true;
            if (_holding)
            {
                _reactor.QueueSend(this);
            }
        }
        return _readable && _started && _readState == ReadState.Active;
    }

    bool IEpollHandler.Run() => _readable && _started && _readState == ReadState.Active && Receive();

    void IEpollHandler.Send() => Send();

    void IEpollHandler.OnReactorStopping()
        => Close(new ConnectionAbortedException("The epoll transport is stopping."), reset: true);

    public override async ValueTask DisposeAsync()
    {
        // As in Kestrel's transports: complete the application's side; the reactor sends what is left, closes
        // the socket, and completes the transport's side.
        Transport.Input.Complete();
        Transport.Output.Complete();
        if (!_startRequested)
        {
            Abort(new ConnectionAbortedException("The connection was disposed before it started."));
        }
        await _closedCompletion.Task.ConfigureAwait(false);
    }

    /// <summary>
    /// Created on first use (most connections are named only by Kestrel's accept loop), but once: the reactor may
    /// log the connection while Kestrel reads its id, and a connection must never appear under two ids.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private string CreateConnectionId()
    {
        var id = ConnectionIds.Next();
        return Interlocked.CompareExchange(ref _connectionId, id, null) ?? id;
    }

    /// <summary>
    /// What a failed recv or sendmsg tells the application, logged as Sockets logs it: a reset (the peer is gone) as
    /// <c>ConnectionReset</c>, any other error as <c>ConnectionError</c>, both at Debug.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Exception ConnectionFailure(int errno)
    {
        if (Errnos.IsConnectionReset(errno))
        {
            EpollTransportLog.ConnectionReset(_logger, this);
            return new ConnectionResetException(Errnos.Describe(errno), SocketErrors.ToSocketException(errno));
        }
        var error = SocketErrors.ToSocketException(errno);
        EpollTransportLog.ConnectionError(_logger, this, error);
        return error;
    }
}
