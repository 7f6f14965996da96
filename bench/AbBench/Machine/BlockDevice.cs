using System.Globalization;

namespace AbBench;

/// <summary>Which disk holds a folder, named as the blkio controller wants it: "MAJ:MIN" of the whole disk.</summary>
internal static class BlockDevice
{
    public static async Task<string> OfAsync(string folder, CancellationToken ct)
    {
        // st_dev in glibc's encoding; .NET has no API for it, coreutils' stat prints it.
        var text = await Processes.TryReadAsync("stat", ["-c", "%d", folder], ct);
        if (!ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var dev))
        {
            throw new BenchException($"cannot tell which device holds {folder}: `stat -c %d` printed '{text}'.");
        }
        var major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xfffff000);
        var minor = (dev & 0xff) | ((dev >> 12) & 0xffffff00);
        var id = $"{major}:{minor}";

        var sys = new DirectoryInfo($"/sys/dev/block/{id}");
        if (!sys.Exists)
        {
            throw new BenchException($"{folder} is on device {id}, which is not a block device (tmpfs, overlay, a network file system?): there is no disk to throttle and no page cache to drop. Point TMPDIR at a folder on a local disk.");
        }
        if (!File.Exists(Path.Combine(sys.FullName, "partition")))
        {
            return id;
        }
        // blkio takes rules for whole disks only; a partition's reads are throttled by its disk's rule.
        var partition = sys.ResolveLinkTarget(returnFinalTarget: true)?.FullName
            ?? throw new BenchException($"/sys/dev/block/{id} is not a link to the device; cannot find the disk of partition {id}.");
        var disk = Path.GetDirectoryName(partition) ?? "";
        return File.ReadAllText(Path.Combine(disk, "dev")).Trim();
    }
}
