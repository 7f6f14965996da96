using System.Runtime.InteropServices;

namespace EpollTransport.Posix;

/// <summary>struct iovec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IOVector
{
    public void* Base;
    public nuint Length;
}
