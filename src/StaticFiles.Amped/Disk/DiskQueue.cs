namespace StaticFiles.Amped.Disk;

/// <summary>Which helper queue a job waits in.</summary>
internal enum DiskQueue
{
    /// <summary><c>statx</c> and <c>open</c>: short calls, apart from reads so that a cold open never waits behind a large read.</summary>
    Metadata,

    /// <summary><c>pread</c> of file contents.</summary>
    Data,
}
