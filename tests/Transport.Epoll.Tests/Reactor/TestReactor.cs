using System.Buffers;
using EpollTransport.Reactor;
using Microsoft.Extensions.Logging.Abstractions;

namespace EpollTransport.Tests.Reactor;

/// <summary>A bare reactor, started, for tests that drive the loop without a transport factory.</summary>
internal static class TestReactor
{
    public static EpollReactor Start(int id)
    {
        var reactor = new EpollReactor(id, 64, new SharedPool(), NullLogger.Instance);
        reactor.Start();
        return reactor;
    }

    /// <summary>The reactor disposes its pool when it stops; the shared array pool must outlive it.</summary>
    private sealed class SharedPool : MemoryPool<byte>
    {
        public override int MaxBufferSize => 4096;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1) => Shared.Rent(minBufferSize);

        protected override void Dispose(bool disposing)
        {
        }
    }
}
