using Microsoft.Net.Http.Headers;
using StaticFiles.Amped.Disk;
using StaticFiles.Amped.Http;

namespace StaticFiles.Amped.Caching;

/// <summary>
/// One file as the middleware serves it, opened and described once: its fd, its validators and the header values
/// made from them (Flash's ready-made headers), and, once read, its bytes (Flash's small-file cache). A request
/// that finds it in the cache makes no <c>open</c> or <c>statx</c>, and none of the header formatting; one that
/// finds its bytes makes no <c>read</c> either.
/// </summary>
internal sealed class CachedFile
{
    private byte[]? _content;
    private int _loading;

    public CachedFile(OpenedFile opened, string physicalPath)
    {
        Fd = opened.Fd;
        PhysicalPath = physicalPath;
        var stat = opened.Stat;
        Length = (long)stat.stx_size;
        Validators = FileValidators.Create(Length, stat.stx_mtime.tv_sec, stat.stx_mtime.tv_nsec, stat.stx_ino);
        ETag = Validators.ETag.ToString();
        LastModified = HeaderUtilities.FormatDate(Validators.LastModified);
    }

    /// <summary>The open file; closed when the last request using its <see cref="CachedPath"/> is done.</summary>
    public int Fd { get; }

    /// <summary>For <c>StaticFileResponseContext</c>: the file's full path on disk.</summary>
    public string PhysicalPath { get; }

    public long Length { get; }

    public FileValidators Validators { get; }

    /// <summary>The <c>ETag</c> header value.</summary>
    public string ETag { get; }

    /// <summary>The <c>Last-Modified</c> header value.</summary>
    public string LastModified { get; }

    /// <summary>The whole file, once a request has read it into the cache; null before (or for a large file).</summary>
    public byte[]? Content => Volatile.Read(ref _content);

    /// <summary>True for the one request that should read the bytes into the cache; the others read as usual meanwhile.</summary>
    public bool TryBeginLoad() => Interlocked.Exchange(ref _loading, 1) == 0;

    /// <summary>Ends the load <see cref="TryBeginLoad"/> began: with the bytes, or with null to let a later request try.</summary>
    public void EndLoad(byte[]? content)
    {
        if (content is null)
        {
            Volatile.Write(ref _loading, 0);
            return;
        }
        Volatile.Write(ref _content, content);
    }
}
