using System.Runtime.InteropServices;

namespace EpollTransport.Posix;

/// <summary>struct msghdr (64-bit layout, the same on x86-64 and arm64).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MessageHeader
{
    public void* Name;
    public uint NameLength;
    public IOVector* IOVectors;
    public nuint IOVectorCount;
    public void* Control;
    public nuint ControlLength;
    public int Flags;
}
