// The agent's listening sockets: AF_VSOCK in a guest (the host reaches it through Firecracker's hybrid vsock), a Unix
// socket on a host (tests, the stand-in). .NET has no vsock endpoint, so VsockEndPoint gives Socket the raw
// sockaddr_vm.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Kiln.GuestAgent.Interop;

namespace Kiln.GuestAgent;

/// <summary>struct sockaddr_vm { sa_family_t family; u16 reserved; u32 port; u32 cid; u8 zero[4]; }.</summary>
internal sealed class VsockEndPoint : EndPoint
{
    private const int Size = 16;

    public VsockEndPoint(uint cid, uint port)
    {
        Cid = cid;
        Port = port;
    }

    public uint Cid { get; }

    public uint Port { get; }

    public override AddressFamily AddressFamily => (AddressFamily)Native.AF_VSOCK;

    public override SocketAddress Serialize()
    {
        var address = new SocketAddress(AddressFamily, Size);
        var buffer = address.Buffer.Span;
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[4..], Port);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[8..], Cid);
        return address;
    }

    public override EndPoint Create(SocketAddress socketAddress)
    {
        var buffer = socketAddress.Buffer.Span;
        return new VsockEndPoint(BinaryPrimitives.ReadUInt32LittleEndian(buffer[8..]), BinaryPrimitives.ReadUInt32LittleEndian(buffer[4..]));
    }

    public override string ToString() => $"vsock:{Cid}:{Port}";
}

internal static class Listeners
{
    public static Socket Vsock(int port)
    {
        var socket = new Socket((AddressFamily)Native.AF_VSOCK, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new VsockEndPoint(Native.VMADDR_CID_ANY, (uint)port));
            socket.Listen(128);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static Socket Unix(string path)
    {
        if (File.Exists(path))
            File.Delete(path); // a stale socket from an earlier run of ours
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(128);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
