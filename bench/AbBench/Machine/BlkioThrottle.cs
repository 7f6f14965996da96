using System.Globalization;

namespace AbBench;

/// <summary>
/// A slow disk for the servers, made from the cgroup v1 blkio controller: a group whose reads from one disk are
/// throttled to so many I/O operations and bytes per second. A process moved into it (by writing its pid to
/// cgroup.procs) brings all its threads along, and threads it creates later inherit the group; processes outside
/// it (the harness, the load generators) read at full speed. Removed again on dispose.
/// </summary>
internal sealed class BlkioThrottle : IDisposable
{
    public const string Hierarchy = "/sys/fs/cgroup/blkio";
    public const string GroupName = "abbench-disk";

    private readonly string _dir;

    private BlkioThrottle(string dir, string device)
    {
        _dir = dir;
        Device = device;
    }

    /// <summary>The throttled disk, "MAJ:MIN".</summary>
    public string Device { get; }

    public static BlkioThrottle Create(string device, int readIops, long readBytesPerSecond)
    {
        if (!File.Exists(Path.Combine(Hierarchy, "blkio.throttle.read_iops_device")))
        {
            throw new BenchException($"there is no cgroup v1 blkio controller at {Hierarchy} (with blkio.throttle.*): the disk scenario needs one to make a slow disk.");
        }
        // One left over by a run that was killed is taken over as it is.
        var dir = Path.Combine(Hierarchy, GroupName);
        Directory.CreateDirectory(dir);
        var throttle = new BlkioThrottle(dir, device);
        try
        {
            Write(dir, "blkio.throttle.read_iops_device", $"{device} {readIops}");
            Write(dir, "blkio.throttle.read_bps_device", $"{device} {readBytesPerSecond}");
            return throttle;
        }
        catch
        {
            throttle.Dispose();
            throw;
        }
    }

    /// <summary>Moves a process, all its threads with it, into the group.</summary>
    public void Add(int pid) => Write(_dir, "cgroup.procs", pid.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// Reads from the throttled disk so far by the processes in the group, as the throttle counted them
    /// (blkio.throttle.io_serviced and io_service_bytes, the "Read" lines): operations and bytes.
    /// </summary>
    public (long Operations, long Bytes) Reads() => (ReadStat("blkio.throttle.io_serviced"), ReadStat("blkio.throttle.io_service_bytes"));

    /// <summary>Moves whatever is still in the group back to the root group, then removes the group.</summary>
    public void Dispose()
    {
        try
        {
            foreach (var pid in File.ReadAllLines(Path.Combine(_dir, "cgroup.procs")))
            {
                try
                {
                    File.WriteAllText(Path.Combine(Hierarchy, "cgroup.procs"), pid);
                }
                catch (IOException)
                {
                    // It exited in the meantime.
                }
            }
            Directory.Delete(_dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"warning: could not remove the cgroup {_dir}: {e.Message}. Remove it with: rmdir {_dir}");
        }
    }

    private long ReadStat(string file)
    {
        foreach (var line in File.ReadAllLines(Path.Combine(_dir, file)))
        {
            var fields = line.Split(' ');
            if (fields is [var device, "Read", var value] && device == Device)
            {
                return long.Parse(value, CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    private static void Write(string dir, string file, string value)
    {
        try
        {
            File.WriteAllText(Path.Combine(dir, file), value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BenchException($"cannot write '{value}' to {Path.Combine(dir, file)}: {e.Message}");
        }
    }
}
