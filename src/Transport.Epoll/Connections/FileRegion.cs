using Microsoft.Win32.SafeHandles;

namespace EpollTransport.Connections;

/// <summary>
/// Bytes of a file to send at a point of a connection's output stream: after <see cref="PipePosition"/> bytes of the
/// output pipe. Holds a reference on the file's handle until it is sent or dropped (<see cref="Release"/>).
/// </summary>
internal sealed class FileRegion
{
    private int _released;

    public FileRegion(SafeFileHandle file, long pipePosition, long offset, long length)
    {
        var added = false;
        file.DangerousAddRef(ref added);
        File = file;
        PipePosition = pipePosition;
        Offset = offset;
        Remaining = length;
    }

    public SafeFileHandle File { get; }

    /// <summary>How many output pipe bytes precede this region in the stream.</summary>
    public long PipePosition { get; }

    /// <summary>The file offset of the next byte to send. Sender only.</summary>
    public long Offset { get; set; }

    /// <summary>Bytes left to send. Sender only.</summary>
    public long Remaining { get; set; }

    /// <summary>The file offset up to which the pages are known to be in the page cache. Sender only.</summary>
    public long ResidentUntil { get; set; }

    /// <summary>Drops the handle's reference, once.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            File.DangerousRelease();
        }
    }
}
