using Microsoft.Extensions.FileProviders;

namespace StaticFiles.Amped;

/// <summary>
/// The file being served, as <c>OnPrepareResponse</c> sees it (<c>StaticFileResponseContext.File</c>). Its
/// metadata comes from the <c>statx</c> already made; only <see cref="CreateReadStream"/> touches the disk again.
/// </summary>
internal sealed class AmpedFileInfo(string physicalPath, long length, DateTimeOffset lastModified) : IFileInfo
{
    public bool Exists => true;

    public long Length => length;

    public string PhysicalPath => physicalPath;

    public string Name => Path.GetFileName(physicalPath);

    public DateTimeOffset LastModified => lastModified;

    public bool IsDirectory => false;

    public Stream CreateReadStream() => new FileStream(physicalPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
}
