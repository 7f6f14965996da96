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

    /// <summary>Builds the validators from what <c>fstat</c> reports about an open file.</summary>
    /// <param name="length">The file's size in bytes (<c>st_size</c>).</param>
    /// <param name="lastWriteTimeUtc">The modification time (<c>st_mtim</c>); anything below a second is dropped.</param>
    /// <param name="lastWriteNanoseconds">
    /// The sub-second part of the modification time in nanoseconds (<c>st_mtim.tv_nsec</c>), 0 to 999,999,999.
    /// </param>
    /// <param name="inode">The file's inode number (<c>st_ino</c>).</param>
    public static FileValidators Create(long length, DateTimeOffset lastWriteTimeUtc, long lastWriteNanoseconds, ulong inode)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegative(lastWriteNanoseconds);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(lastWriteNanoseconds, NanosecondsPerSecond);

        // RFC 9110 §5.6.7: an HTTP-date has one-second resolution. Truncating here makes the Last-Modified we send
        // and the If-Modified-Since/If-Range dates clients echo back compare equal (§13.1.3, §13.1.5).
        var seconds = lastWriteTimeUtc.ToUnixTimeSeconds();
        var lastModified = DateTimeOffset.FromUnixTimeSeconds(seconds);

        // RFC 9110 §8.8.3: a strong ETag must change whenever the content does. Size and a one-second date miss a
        // same-length rewrite within the second, so the tag carries the full nanosecond mtime; the inode tells apart
        // a file replaced by rename (an atomic deploy) that happens to share size and mtime. Hex keeps it short and
        // inside etagc (§8.8.3).
        var tag = string.Create(
            CultureInfo.InvariantCulture,
            $"\"{inode:x}-{length:x}-{seconds:x}.{lastWriteNanoseconds:x}\"");

        return new FileValidators(length, lastModified, new EntityTagHeaderValue(tag));
    }
}
