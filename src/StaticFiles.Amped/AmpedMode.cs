namespace StaticFiles.Amped;

/// <summary>Where the middleware makes the file system calls that may block.</summary>
public enum AmpedMode
{
    /// <summary>
    /// Flash's AMPED design (the default): the loop never blocks on disk. <c>open</c>, <c>statx</c> and reads that
    /// miss the page cache run on helper threads, and their completions come back to the loop through its eventfd.
    /// </summary>
    Amped,

    /// <summary>
    /// Flash's SPED design: every call runs on the loop, which stalls while the disk works. For comparison only.
    /// </summary>
    Sped,
}
