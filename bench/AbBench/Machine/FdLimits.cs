using System.Globalization;

namespace AbBench;

/// <summary>RLIMIT_NOFILE of this process, read from /proc/self/limits.</summary>
internal readonly record struct FdLimits(int Soft, int Hard)
{
    public static FdLimits Read()
    {
        foreach (var line in File.ReadAllLines("/proc/self/limits"))
        {
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return new FdLimits(Parse(fields[0]), Parse(fields[1]));
            }
        }
        return new FdLimits(1024, 1024);
    }

    private static int Parse(string value) =>
        value == "unlimited" ? int.MaxValue : (int)Math.Min(int.MaxValue, long.Parse(value, CultureInfo.InvariantCulture));
}
