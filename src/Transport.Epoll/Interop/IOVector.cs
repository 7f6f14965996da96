using System.Runtime.InteropServices;

namespace EpollTransport.Interop;

/// <summary>struct iovec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IOVector
{
    public void* Base;
    public nuint Length;
}
