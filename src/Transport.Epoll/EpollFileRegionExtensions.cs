using System.IO.Pipelines;
using Microsoft.Win32.SafeHandles;

namespace EpollTransport;

/// <summary>The steps of one file region in one call (<see cref="IEpollFileRegionFeature"/>).</summary>
public static class EpollFileRegionExtensions
{
    /// <summary>The most scratch memory one <c>GetMemory</c> asks for while armed (the transport's scratch is this large).</summary>
    private const int Step = 1024 * 1024;

    /// <summary>
    /// Arms a region of <paramref name="length"/> bytes of <paramref name="file"/> from <paramref name="offset"/>,
    /// advances <paramref name="writer"/> (the response's body writer, after its head is flushed) over it without
    /// writing, and disarms, even when an <c>Advance</c> throws. The caller flushes afterwards.
    /// </summary>
    /// <param name="region">The connection's region feature.</param>
    /// <param name="writer">The response body writer.</param>
    /// <param name="file">The file; the transport adds its own reference.</param>
    /// <param name="offset">The file offset of the region's first byte.</param>
    /// <param name="length">The region's length in bytes.</param>
    /// <param name="pagesReady">As <see cref="IEpollFileRegionFeature.TryArm"/>'s.</param>
    /// <param name="missing">
    /// How many of the region's bytes did not reach the transport: 0 when all did; anything else means something
    /// buffered them on the way, and the caller must abort the response (the peer would get scratch bytes or too few).
    /// </param>
    /// <returns>False when the connection refused the region and nothing was advanced: write the bytes instead.</returns>
    public static bool TryWriteRegion(this IEpollFileRegionFeature region, PipeWriter writer, SafeFileHandle file, long offset, long length,
        bool pagesReady, out long missing)
    {
        ArgumentNullException.ThrowIfNull(region);
        ArgumentNullException.ThrowIfNull(writer);
        missing = 0;
        if (!region.TryArm(file, offset, length, pagesReady))
        {
            return false;
        }
        try
        {
            for (var left = length; left > 0;)
            {
                var memory = writer.GetMemory((int)Math.Min(left, Step));
                var step = (int)Math.Min(left, memory.Length);
                writer.Advance(step);
                left -= step;
            }
        }
        finally
        {
            missing = region.Disarm();
        }
        return true;
    }
}
