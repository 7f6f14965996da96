using System.Globalization;

namespace AbBench;

/// <summary>The few figures the harness reads from /proc/PID/stat and /proc/PID/status.</summary>
internal static class ProcFiles
{
    /// <summary>utime + stime from the text of a stat file (a process's or a thread's), in clock ticks.</summary>
    public static long CpuTicks(string stat)
    {
        // The command name in parentheses may hold spaces; the fields after it start with field 3 (state).
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>A "kB" field such as VmRSS from the text of a status file, in KiB; null if there is no such line.</summary>
    public static long? StatusKiB(string status, string field)
    {
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }
        return null;
    }
}
