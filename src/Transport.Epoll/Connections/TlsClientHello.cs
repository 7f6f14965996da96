using System.Buffers.Binary;

namespace EpollTransport.Connections;

/// <summary>
/// Reads the ALPN list (RFC 7301) of a TLS ClientHello as it arrives, without decrypting or keeping anything but the
/// bytes of the first record. <see cref="EpollSendMode.Auto"/> uses it to tell a connection that will speak HTTP/2
/// over TLS before the handshake ends, on the reactor thread, without touching Kestrel's features.
/// </summary>
/// <remarks>
/// Only what the client offers is known here, not what the server selects. Kestrel selects <c>h2</c> whenever the
/// client offers it and the endpoint allows HTTP/2; an endpoint limited to HTTP/1.1 makes the guess wrong, which
/// costs speed only: every send path is correct for every protocol.
/// </remarks>
internal static class TlsClientHello
{
    /// <summary>The most bytes buffered while a ClientHello is split across receives; a larger one is not read.</summary>
    internal const int MaxBuffered = 16 * 1024;

    /// <summary>What a prefix of a connection's first bytes says.</summary>
    internal enum Verdict
    {
        /// <summary>Not a ClientHello that offers the protocol: not TLS, malformed, or no ALPN entry for it.</summary>
        No,

        /// <summary>A ClientHello whose ALPN extension lists the protocol.</summary>
        Offers,

        /// <summary>The bytes so far begin a ClientHello that does not end yet.</summary>
        NeedMore,
    }

    private const byte HandshakeRecord = 22;
    private const byte ClientHelloMessage = 1;
    private const ushort AlpnExtension = 16;
    private const int RecordHeaderLength = 5;

    /// <summary>The ALPN protocol ID of HTTP/2 over TLS.</summary>
    internal static ReadOnlySpan<byte> H2 => "h2"u8;

    /// <summary>Whether <paramref name="bytes"/>, the first bytes of a connection, are a ClientHello whose ALPN list has <paramref name="protocol"/>.</summary>
    internal static Verdict Offers(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> protocol)
    {
        if (bytes.Length == 0)
        {
            return Verdict.NeedMore;
        }
        if (bytes[0] != HandshakeRecord)
        {
            return Verdict.No;
        }
        if (bytes.Length < RecordHeaderLength)
        {
            return Verdict.NeedMore;
        }
        // Record: type, legacy version (3.x), 16-bit length. The ClientHello must fit in this one record; a client
        // that fragments it (allowed, never seen from browsers or .NET) gets the default path.
        if (bytes[1] != 3)
        {
            return Verdict.No;
        }
        int recordLength = BinaryPrimitives.ReadUInt16BigEndian(bytes[3..]);
        if (RecordHeaderLength + recordLength > MaxBuffered)
        {
            return Verdict.No;
        }
        if (bytes.Length < RecordHeaderLength + recordLength)
        {
            return Verdict.NeedMore;
        }
        var reader = new Reader(bytes.Slice(RecordHeaderLength, recordLength));
        // Handshake: type, 24-bit length, then the ClientHello body.
        if (!reader.Byte(out var type) || type != ClientHelloMessage || !reader.Length(3, out var bodyLength) || bodyLength > reader.Remaining)
        {
            return Verdict.No;
        }
        var body = new Reader(reader.Rest[..bodyLength]);
        // Legacy version, random, session id, cipher suites, compression methods, then the extensions.
        if (!body.Skip(2 + 32) || !body.SkipVector(1) || !body.SkipVector(2) || !body.SkipVector(1)
            || !body.Length(2, out var extensionsLength) || extensionsLength > body.Remaining)
        {
            return Verdict.No;
        }
        var extensions = new Reader(body.Rest[..extensionsLength]);
        while (extensions.Remaining > 0)
        {
            if (!extensions.Length(2, out var extensionType) || !extensions.Length(2, out var length) || length > extensions.Remaining)
            {
                return Verdict.No;
            }
            var data = extensions.Rest[..length];
            extensions.Skip(length);
            if (extensionType == AlpnExtension)
            {
                return ListHas(data, protocol) ? Verdict.Offers : Verdict.No;
            }
        }
        return Verdict.No;
    }

    /// <summary>
    /// How many bytes the buffer of a ClientHello that is not whole yet (<see cref="Offers"/> said
    /// <see cref="Verdict.NeedMore"/>) must hold: the record's header, then the whole record once its length is known.
    /// Always more than <paramref name="bytes"/> holds.
    /// </summary>
    internal static int BytesNeeded(ReadOnlySpan<byte> bytes)
        => bytes.Length < RecordHeaderLength ? RecordHeaderLength : RecordHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(bytes[3..]);

    /// <summary>
    /// A connection's first receives, fed one by one until <see cref="Offers"/> can tell: the bytes are looked at where
    /// they lie while one receive is enough (the usual case), and copied only while a ClientHello is split across
    /// receives, at most one record (<see cref="MaxBuffered"/>; the server's TLS layer buffers as much).
    /// </summary>
    internal struct Sniffer
    {
        private byte[]? _bytes;
        private int _length;

        /// <summary>Whether bytes are kept from an earlier receive.</summary>
        public readonly bool Started => _bytes is not null;

        /// <summary>Takes the next receive; once the verdict is not <see cref="Verdict.NeedMore"/>, the bytes kept are let go.</summary>
        public Verdict Feed(ReadOnlySpan<byte> received, ReadOnlySpan<byte> protocol)
        {
            if (_bytes is null)
            {
                var first = Offers(received, protocol);
                if (first == Verdict.NeedMore)
                {
                    _bytes = new byte[BytesNeeded(received)];
                    received.CopyTo(_bytes);
                    _length = received.Length;
                }
                return first;
            }
            while (true)
            {
                var take = Math.Min(received.Length, _bytes.Length - _length);
                received[..take].CopyTo(_bytes.AsSpan(_length));
                received = received[take..];
                _length += take;
                var bytes = _bytes.AsSpan(0, _length);
                var verdict = Offers(bytes, protocol);
                if (verdict != Verdict.NeedMore)
                {
                    _bytes = null;
                    _length = 0;
                    return verdict;
                }
                // The record's header has come: the buffer grows to the whole record.
                var needed = BytesNeeded(bytes);
                if (needed > _bytes.Length)
                {
                    Array.Resize(ref _bytes, needed);
                }
                if (received.IsEmpty)
                {
                    return verdict;
                }
            }
        }
    }

    /// <summary>Whether an ALPN extension's data (a 16-bit length, then 8-bit length-prefixed IDs) lists <paramref name="protocol"/>.</summary>
    private static bool ListHas(ReadOnlySpan<byte> data, ReadOnlySpan<byte> protocol)
    {
        var reader = new Reader(data);
        if (!reader.Length(2, out var listLength) || listLength != reader.Remaining)
        {
            return false;
        }
        while (reader.Remaining > 0)
        {
            if (!reader.Length(1, out var length) || length == 0 || length > reader.Remaining)
            {
                return false;
            }
            if (reader.Rest[..length].SequenceEqual(protocol))
            {
                return true;
            }
            reader.Skip(length);
        }
        return false;
    }

    /// <summary>A bounds-checked cursor over big-endian TLS fields: every method fails instead of reading past the end.</summary>
    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private ReadOnlySpan<byte> _rest = bytes;

        public readonly int Remaining => _rest.Length;

        public readonly ReadOnlySpan<byte> Rest => _rest;

        public bool Skip(int count)
        {
            if (count > _rest.Length)
            {
                return false;
            }
            _rest = _rest[count..];
            return true;
        }

        public bool Byte(out byte value)
        {
            value = 0;
            if (_rest.Length < 1)
            {
                return false;
            }
            value = _rest[0];
            _rest = _rest[1..];
            return true;
        }

        /// <summary>A big-endian unsigned integer of <paramref name="size"/> bytes (1 to 3).</summary>
        public bool Length(int size, out int value)
        {
            value = 0;
            if (_rest.Length < size)
            {
                return false;
            }
            for (var i = 0; i < size; i++)
            {
                value = (value << 8) | _rest[i];
            }
            _rest = _rest[size..];
            return true;
        }

        /// <summary>Skips a vector whose length prefix is <paramref name="prefix"/> bytes.</summary>
        public bool SkipVector(int prefix) => Length(prefix, out var length) && Skip(length);
    }
}
