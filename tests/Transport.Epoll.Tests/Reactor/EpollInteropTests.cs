using System.Runtime.InteropServices;
using EpollTransport.Interop;
using EpollTransport.Reactor;

namespace EpollTransport.Tests.Reactor;

public class EpollInteropTests
{

    [Fact]
    public async Task EveryEventOfABatchReachesItsHandlerWithThisArchitecturesLayout()
    {
        // epoll_event is 12 bytes packed on x86-64 and 16 elsewhere. With a wrong stride the second event of a
        // batch carries a garbage token, resolves to no handler, and its handler never runs.
        Assert.Equal(RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16, EpollInterop.EventSize);

        var reactor = TestReactor.Start(0);
        var signals = Enumerable.Range(0, 5).Select(_ => new ReactorWakeup(new ReactorCounters())).ToArray();
        try
        {
            var handlers = signals.Select(s => new SignalHandler()).ToArray();
            var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            reactor.Schedule(_ =>
            {
                for (int i = 0; i < signals.Length; i++)
                {
                    Assert.True(reactor.Register(handlers[i], signals[i].EventFd).IsSuccess);
                }
                registered.SetResult();
            }, null);
            await registered.Task.WaitAsync(WaitLimit);

            foreach (var signal in signals)
            {
                // A readable edge on that fd.
                EpollInterop.SignalEventFd(signal.EventFd);
            }
            await Task.WhenAll(handlers.Select(h => h.Signalled.Task)).WaitAsync(WaitLimit);
        }
        finally
        {
            reactor.Stop();
            await reactor.Completion.WaitAsync(WaitLimit);
            foreach (var signal in signals)
            {
                signal.Dispose();
            }
        }
    }

    private sealed class SignalHandler : IEpollHandler
    {
        public TaskCompletionSource Signalled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ulong Token { get; set; }

        public bool IsReady { get; set; }

        public bool IsSendQueued { get; set; }

        public bool OnEvents(uint events)
        {
            if ((events & EpollInterop.EPOLLIN) != 0)
            {
                Signalled.TrySetResult();
            }
            return false;
        }

        public bool Run() => false;

        public void Send()
        {
        }

        public void OnReactorStopping()
        {
        }
    }
}
