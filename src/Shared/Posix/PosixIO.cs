using System.Runtime.InteropServices;

namespace EpollTransport.Posix;

/// <summary>
/// The fd calls of the hot paths: <c>recv</c>/<c>recvmsg</c>/<c>sendmsg</c> on a connection, <c>preadv2</c> with
/// RWF_NOWAIT on an event loop, and <c>close</c> for every fd. Each of them but <c>close</c> is retried here when a
/// signal interrupts it, so that no caller handles EINTR.
/// </summary>
internal static unsafe partial class PosixIO
{
    private const int MSG_NOSIGNAL = 0x4000;
    private const int RWF_NOWAIT = 0x08;

    // The control message TCP_INQ adds to a recvmsg: level SOL_TCP, type TCP_INQ, one int.
    private const int SOL_TCP = 6;
    private const int TCP_INQ = 36;

    /// <summary>
    /// Closes <paramref name="fd"/>, once: Linux frees the fd even when close reports an error (EINTR included), so a
    /// retry could close an fd another thread has just been given.
    /// </summary>
    public static PosixResult Close(int fd) => PosixResult.FromReturn(close(fd));

    public static PosixResult Receive(int fd, Span<byte> buffer)
    {
        fixed (byte* pointer = buffer)
        {
            PosixResult result;
            do
            {
                result = PosixResult.FromReturn(recv(fd, pointer, (nuint)buffer.Length, 0));
            }
            while (result.Interrupted);
            return result;
        }
    }

    /// <summary>
    /// recvmsg(2) into one buffer. With <c>TCP_INQ</c> set on the socket, <paramref name="queued"/> is what the
    /// kernel says is left in the receive queue after this read (non-zero while a FIN is still to be read); -1 when
    /// the kernel sent no such word.
    /// </summary>
    public static PosixResult ReceiveMessage(int fd, Span<byte> buffer, out int queued)
    {
        fixed (byte* pointer = buffer)
        {
            var vector = new IOVector { Base = pointer, Length = (nuint)buffer.Length };
            // struct cmsghdr (16 bytes on 64-bit) and one int, padded: CMSG_SPACE(sizeof(int)) is 24.
            ulong* control = stackalloc ulong[3];
            MessageHeader message;
            PosixResult result;
            do
            {
                message = default;
                message.IOVectors = &vector;
                message.IOVectorCount = 1;
                message.Control = control;
                message.ControlLength = 3 * sizeof(ulong);
                result = PosixResult.FromReturn(recvmsg(fd, &message, 0));
            }
            while (result.Interrupted);
            queued = -1;
            if (result.IsSuccess && message.ControlLength >= 20 && ((int*)control)[2] == SOL_TCP && ((int*)control)[3] == TCP_INQ)
            {
                queued = ((int*)control)[4];
            }
            return result;
        }
    }

    /// <summary>A gathering sendmsg(2) of <paramref name="vectors"/>, with <c>MSG_NOSIGNAL</c>: a closed peer is EPIPE, never SIGPIPE.</summary>
    public static PosixResult SendMessage(int fd, ReadOnlySpan<IOVector> vectors)
    {
        fixed (IOVector* pointer = vectors)
        {
            var message = default(MessageHeader);
            message.IOVectors = pointer;
            message.IOVectorCount = (nuint)vectors.Length;
            PosixResult result;
            do
            {
                result = PosixResult.FromReturn(sendmsg(fd, &message, MSG_NOSIGNAL));
            }
            while (result.Interrupted);
            return result;
        }
    }

    /// <summary>
    /// Reads from <paramref name="offset"/> only what is already in the page cache (RWF_NOWAIT): never waits for
    /// the disk. EAGAIN when the first byte is not cached; fewer bytes than asked for when only a prefix is.
    /// EOPNOTSUPP from a file system that cannot read without waiting; either way a call that may wait reads it.
    /// </summary>
    public static PosixResult ReadNoWait(int fd, Span<byte> buffer, long offset)
    {
        // preadv2 reads an offset of -1 as "the current file position" rather than failing.
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        fixed (byte* pointer = buffer)
        {
            var vector = new IOVector { Base = pointer, Length = (nuint)buffer.Length };
            PosixResult result;
            do
            {
                result = PosixResult.FromReturn(preadv2(fd, &vector, 1, offset, RWF_NOWAIT));
            }
            while (result.Interrupted);
            return result;
        }
    }

    /// <summary>
    /// Whether every page of <paramref name="length"/> bytes from <paramref name="offset"/> of the file
    /// <paramref name="fd"/> is in the page cache and read, so that a <c>sendfile</c> of it does not wait for the disk.
    /// None of the calls waits for the disk.
    /// </summary>
    /// <remarks>
    /// <para>
    /// <c>cachestat(2)</c> (Linux 6.5+) says whether every page is in the cache, but it counts a page from the moment
    /// a read of it is queued (measured under a blkio throttle: all 1024 pages of a 4 MiB range "cached" right after a
    /// <c>readahead</c>, none of them read for 0.5 s). So a range it finds whole is then probed with one-byte
    /// <c>preadv2(RWF_NOWAIT)</c> reads, which fail with EAGAIN on a page still being read: its first byte, one byte
    /// every <see cref="ProbeSpacing"/>, and its last byte. The spacing assumes that a read still in flight spans at least
    /// that much of the range (readahead queues large reads; this is reasoned, not measured): a shorter one between two
    /// probes could pass, and the <c>sendfile</c> would then wait for that one read only.
    /// </para>
    /// <para>
    /// Without <c>cachestat</c> (ENOSYS on an older kernel, EPERM from some seccomp filters) it asks <c>mincore(2)</c>
    /// of a mapping of the range that is never touched, which counts only pages that are read: exact, but the
    /// <c>mmap</c> and <c>munmap</c> are costly next to a cached 64 KiB response (in the disk scenario's fully cached
    /// case, AMPED with two such checks per response fell to 0.75 of SPED's req/s, from 1.03 with cachestat).
    /// </para>
    /// </remarks>
    public static PosixResult PagesReady(int fd, long offset, long length, out bool ready)
    {
        ready = false;
        if (Volatile.Read(ref s_noCacheStat) == 0)
        {
            var result = CachedPages(fd, offset, length, out var cached);
            if (result.IsSuccess)
            {
                long pageSize = Environment.SystemPageSize;
                var pages = (offset + length + pageSize - 1) / pageSize - offset / pageSize;
                ready = cached >= pages && Probe(fd, offset, length);
                return result;
            }
            if (result.Errno is not (Errnos.ENOSYS or Errnos.EPERM))
            {
                return result;
            }
            Volatile.Write(ref s_noCacheStat, 1);
        }
        return MinCore(fd, offset, length, out ready);
    }

    /// <summary>
    /// cachestat(2): how many pages of the range are in the page cache, counting pages whose read is only queued (see
    /// <see cref="PagesReady"/>). ENOSYS before Linux 6.5.
    /// </summary>
    internal static PosixResult CachedPages(int fd, long offset, long length, out long pages)
    {
        var range = new CacheStatRange { Offset = (ulong)offset, Length = (ulong)length };
        CacheStatResult stat;
        var result = PosixResult.FromReturn(syscall(SYS_cachestat, fd, &range, &stat, 0));
        pages = result.IsSuccess ? (long)stat.Cache : 0;
        return result;
    }

    /// <summary>Probes for a page still being read are this far apart (see <see cref="PagesReady"/>).</summary>
    private const long ProbeSpacing = 64 * 1024;

    /// <summary>1 once cachestat was refused: <see cref="PagesReady"/> asks mincore.</summary>
    private static int s_noCacheStat;

    /// <summary>One-byte RWF_NOWAIT reads across a range that is cached: true when none found a page still being read.</summary>
    private static bool Probe(int fd, long offset, long length)
    {
        byte one;
        var vector = new IOVector { Base = &one, Length = 1 };
        var end = offset + length - 1;
        for (var at = offset; ; at = Math.Min(end, (at / ProbeSpacing + 1) * ProbeSpacing))
        {
            PosixResult result;
            do
            {
                result = PosixResult.FromReturn(preadv2(fd, &vector, 1, at, RWF_NOWAIT));
            }
            while (result.Interrupted);
            if (!result.IsSuccess || result.Value == 0)
            {
                // EAGAIN: a page being read (or one dropped meanwhile); 0: the file is shorter now.
                return false;
            }
            if (at == end)
            {
                return true;
            }
        }
    }

    /// <summary>mincore(2) of an untouched mapping of the range: counts only pages that are read (see <see cref="PagesReady"/>).</summary>
    private static PosixResult MinCore(int fd, long offset, long length, out bool ready)
    {
        ready = false;
        long pageSize = Environment.SystemPageSize;
        var start = offset & ~(pageSize - 1);
        var span = offset + length - start;
        var pages = (int)((span + pageSize - 1) / pageSize);
        var mapping = mmap(null, (nuint)span, PROT_READ, MAP_SHARED, fd, start);
        if ((nint)mapping == -1)
        {
            return PosixResult.FromReturn(-1);
        }
        var rented = pages > 1024 ? System.Buffers.ArrayPool<byte>.Shared.Rent(pages) : null;
        try
        {
            var vector = rented is null ? stackalloc byte[pages] : rented.AsSpan(0, pages);
            PosixResult result;
            fixed (byte* pointer = vector)
            {
                result = PosixResult.FromReturn(mincore(mapping, (nuint)span, pointer));
            }
            if (result.IsSuccess)
            {
                ready = AllOdd(vector);
            }
            return result;
        }
        finally
        {
            munmap(mapping, (nuint)span);
            if (rented is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>mincore's low bit says resident; the others are reserved.</summary>
    private static bool AllOdd(ReadOnlySpan<byte> vector)
    {
        foreach (var page in vector)
        {
            if ((page & 1) == 0)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Reads the range into the page cache and returns once it is there (or the file ended): <c>readahead(2)</c> to
    /// start one large read, then <c>pread</c> through the range into a scratch buffer, which waits for it.
    /// <c>readahead</c> alone does not wait: it queues the reads and returns (measured under a blkio throttle of
    /// 2 MiB/s: it returned in 1 ms with no page of the 4 MiB range cached, and a <c>pread</c> after it took 2 s), so a
    /// loop's <c>sendfile</c> after it would still wait for the disk. May wait for the disk: never on a loop.
    /// </summary>
    public static PosixResult ReadAhead(int fd, long offset, long length)
    {
        // Its errors (EINVAL for a file that has no page cache) are the reads' to report.
        QueueReadAhead(fd, offset, length);
        var scratch = t_readAheadScratch ??= GC.AllocateUninitializedArray<byte>(ReadAheadScratchSize);
        var end = offset + length;
        fixed (byte* pointer = scratch)
        {
            while (offset < end)
            {
                var result = PosixResult.FromReturn(pread(fd, pointer, (nuint)Math.Min(end - offset, scratch.Length), offset));
                if (result.Interrupted)
                {
                    continue;
                }
                if (!result.IsSuccess)
                {
                    return result;
                }
                if (result.Value == 0)
                {
                    // The file ends before the range: what is there is cached; the send finds the end itself.
                    break;
                }
                offset += result.Value;
            }
        }
        return PosixResult.FromReturn(0);
    }

    /// <summary>
    /// readahead(2) alone: queues the reads of the range and returns without waiting for them (the pages are in the
    /// page cache from then on, not yet read). <see cref="ReadAhead"/>'s first step.
    /// </summary>
    internal static PosixResult QueueReadAhead(int fd, long offset, long length) => PosixResult.FromReturn(readahead(fd, offset, (nuint)length));

    private const int ReadAheadScratchSize = 128 * 1024;

    /// <summary>Where <see cref="ReadAhead"/> reads bytes it throws away; one per helper thread.</summary>
    [ThreadStatic]
    private static byte[]? t_readAheadScratch;

    /// <summary>cachestat(2)'s number: the same in the generic table (arm64) and on x86-64.</summary>
    private const long SYS_cachestat = 451;

    [StructLayout(LayoutKind.Sequential)]
    private struct CacheStatRange
    {
        public ulong Offset;
        public ulong Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CacheStatResult
    {
        public ulong Cache;
        public ulong Dirty;
        public ulong Writeback;
        public ulong Evicted;
        public ulong RecentlyEvicted;
    }

    // syscall(2) is variadic; its integer and pointer arguments pass in the same registers as a fixed signature's on
    // x86-64 SysV and arm64 Linux, and glibc's syscall never reads AL.
    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int fd, CacheStatRange* range, CacheStatResult* stat, uint flags);

    private const int PROT_READ = 1;
    private const int MAP_SHARED = 1;

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mincore(void* address, nuint length, byte* vector);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint readahead(int fd, long offset, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pread(int fd, byte* buf, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(int fd, byte* buf, nuint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvmsg(int fd, MessageHeader* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(int fd, MessageHeader* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint preadv2(int fd, IOVector* iov, int iovcnt, long offset, int flags);
}
