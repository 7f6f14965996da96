using System.Globalization;
using Microsoft.Net.Http.Headers;

namespace StaticFiles.Amped.Http;

/// <summary>
/// The validators of one file as HTTP sees them: its length, its Last-Modified date and its strong ETag. Every
/// conditional and range decision compares the request against these.
/// </summary>
/// <param name="Length">The file's size in bytes.</param>
/// <param name="LastModified">The modification time, truncated to whole seconds.</param>
/// <param name="ETag">A strong entity tag.</param>
internal readonly record struct FileValidators(long Length, DateTimeOffset LastModified, EntityTagHeaderValue ETag)
{
    private const long NanosecondsPerSecond = 1_000_000_000;

    /// <summary>The first and last second an HTTP-date (and <see cref="DateTimeOffset"/>) can name: years 1 to 9999.</summary>
    private static readonly long MinSeconds = DateTimeOffset.MinValue.ToUnixTimeSeconds();
    private static readonly long MaxSeconds = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    /// <summary>Builds the validators from what <c>fstat</c> reports about an open file.</summary>
    /// <param name="length">The file's size in bytes (<c>st_size</c>).</param>
    /// <param name="lastWriteTimeUtc">The modification time (<c>st_mtim</c>); anything below a second is dropped.</param>
    /// <param name="lastWriteNanoseconds">
    /// The sub-second part of the modification time in nanoseconds (<c>st_mtim.tv_nsec</c>), 0 to 999,999,999.
    /// </param>
    /// <param name="inode">The file's inode number (<c>st_ino</c>).</param>
    public static FileValidators Create(long length, DateTimeOffset lastWriteTimeUtc, long lastWriteNanoseconds, ulong inode)
        => Create(length, lastWriteTimeUtc.ToUnixTimeSeconds(), lastWriteNanoseconds, inode);

    /// <summary>Builds the validators from the raw <c>statx</c> fields of an open file.</summary>
    /// <param name="length">The file's size in bytes (<c>stx_size</c>).</param>
    /// <param name="lastWriteSeconds">The modification time in seconds since the epoch (<c>stx_mtime.tv_sec</c>), any value.</param>
    /// <param name="lastWriteNanoseconds">The sub-second part (<c>stx_mtime.tv_nsec</c>), 0 to 999,999,999.</param>
    /// <param name="inode">The file's inode number (<c>stx_ino</c>).</param>
    /// <remarks>
    /// tmpfs and btrfs keep mtimes far past the year 9999 (<c>touch -d @300000000000</c>; tar restores such times),
    /// which no HTTP-date can say: Last-Modified is clamped to the last second of 9999 (or the first of year 1), and
    /// the ETag is made of the raw seconds, so it still changes whenever they do.
    /// </remarks>
    public static FileValidators Create(long length, long lastWriteSeconds, long lastWriteNanoseconds, ulong inode)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegative(lastWriteNanoseconds);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(lastWriteNanoseconds, NanosecondsPerSecond);

        // RFC 9110 §5.6.7: an HTTP-date has one-second resolution. Truncating here makes the Last-Modified we send
        // and the If-Modified-Since/If-Range dates clients echo back compare equal (§13.1.3, §13.1.5).
        var lastModified = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(lastWriteSeconds, MinSeconds, MaxSeconds));

        // RFC 9110 §8.8.3: a strong ETag must change whenever the content does. Size and a one-second date miss a
        // same-length rewrite within the second, so the tag carries the full nanosecond mtime; the inode tells apart
        // a file replaced by rename (an atomic deploy) that happens to share size and mtime. Hex keeps it short and
        // inside etagc (§8.8.3); a negative mtime (before 1970) is written as its two's complement.
        var tag = string.Create(
            CultureInfo.InvariantCulture,
            $"\"{inode:x}-{length:x}-{lastWriteSeconds:x}.{lastWriteNanoseconds:x}\"");

        return new FileValidators(length, lastModified, new EntityTagHeaderValue(tag));
    }
}
