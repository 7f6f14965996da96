using System.Runtime.InteropServices;

namespace StaticFiles.Amped.Interop;

/// <summary>
/// struct statx of linux/stat.h: 256 bytes, made of fixed-width fields at naturally aligned offsets, so the layout
/// is the same on x86-64 and arm64. The kernel copies all 256 bytes out whatever the mask asked for, so the buffer
/// must be this big even though the fields after <see cref="stx_dev_minor"/> are not read here.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct Statx
{
    /// <summary>The STATX_* bits the kernel filled in (a file system may leave out some that were asked for).</summary>
    public uint stx_mask;
    public uint stx_blksize;
    public ulong stx_attributes;

    // 0x10
    public uint stx_nlink;
    public uint stx_uid;
    public uint stx_gid;

    /// <summary>File type (S_IFMT bits) and permissions.</summary>
    public ushort stx_mode;
    private ushort __spare0;

    // 0x20
    public ulong stx_ino;
    public ulong stx_size;
    public ulong stx_blocks;
    public ulong stx_attributes_mask;

    // 0x40
    public Timestamp stx_atime;
    public Timestamp stx_btime;
    public Timestamp stx_ctime;
    public Timestamp stx_mtime;

    // 0x80
    public uint stx_rdev_major;
    public uint stx_rdev_minor;
    public uint stx_dev_major;
    public uint stx_dev_minor;

    // 0x90 to 0x100: stx_mnt_id, the direct-I/O alignments and the fields newer kernels add, none of them asked for.
    private fixed ulong __spare[14];

    /// <summary>struct statx_timestamp: seconds since the epoch, and nanoseconds within that second.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Timestamp
    {
        public long tv_sec;
        public uint tv_nsec;
        private int __reserved;
    }
}
