using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Disk;

/// <summary>A <c>pread</c> that may wait for the disk, into memory the loop handed over until the job completes.</summary>
internal sealed class ReadFileJob(int fd, Memory<byte> buffer, long offset) : DiskJob<FileResult>
{
    protected override FileResult Execute()
    {
        FileResult result;
        do
        {
            result = FileInterop.Read(fd, buffer.Span, offset);
        }
        while (result.Interrupted);
        return result;
    }

    /// <summary>The same call on the calling thread (<see cref="AmpedMode.Sped"/>).</summary>
    public FileResult ExecuteHere() => Execute();
}
