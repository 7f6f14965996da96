using System.Runtime.InteropServices;

namespace StaticFiles.Amped.Interop;

/// <summary>
/// struct open_how of linux/openat2.h (24 bytes, OPEN_HOW_SIZE_VER0): three 64-bit words on every architecture.
/// The size passed to openat2 alongside it tells the kernel which version of the struct this is.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct OpenHow
{
    /// <summary>The O_* flags of open(2).</summary>
    public ulong flags;

    /// <summary>File mode for O_CREAT/O_TMPFILE; the kernel refuses (EINVAL) a non-zero mode without them.</summary>
    public ulong mode;

    /// <summary>The RESOLVE_* flags.</summary>
    public ulong resolve;
}
