using System.Security.Cryptography;
using System.Text;

namespace StaticFiles.Amped.Http;

/// <summary>
/// The layout of a <c>multipart/byteranges</c> body (RFC 9110 §14.6): the bytes written before each range, the
/// closing delimiter, and the total length, known before anything is written so the response can carry
/// Content-Length.
/// </summary>
internal sealed class MultipartByteRanges
{
    // RFC 2046 §5.1.1 allows up to 70 boundary characters from a wider set; letters and digits need no quoting in
    // the Content-Type parameter (RFC 9110 §5.6.6).
    private const string BoundaryAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    private const int BoundaryLength = 32;

    private readonly Part[] _parts;

    /// <summary>Lays out the body.</summary>
    /// <param name="ranges">The ranges, in the order they are sent; at least one.</param>
    /// <param name="partContentType">The file's media type, repeated in every part (§14.6).</param>
    /// <param name="fileLength">The complete length of the file, for each part's Content-Range.</param>
    /// <param name="boundary">The boundary, usually from <see cref="NewBoundary"/>.</param>
    public MultipartByteRanges(IReadOnlyList<ByteRange> ranges, string partContentType, long fileLength, string boundary)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        ArgumentOutOfRangeException.ThrowIfZero(ranges.Count);
        ArgumentException.ThrowIfNullOrEmpty(partContentType);
        ArgumentException.ThrowIfNullOrEmpty(boundary);

        Boundary = boundary;
        ContentType = "multipart/byteranges; boundary=" + boundary;

        // RFC 2046 §5.1.1: the body opens with the boundary line itself; every later boundary is preceded by a CRLF
        // that belongs to the delimiter, not to the part before it, so each range's bytes are sent unchanged.
        _parts = new Part[ranges.Count];
        long total = 0;
        for (var i = 0; i < ranges.Count; i++)
        {
            var header = Encoding.ASCII.GetBytes(
                (i == 0 ? "--" : "\r\n--") + boundary + "\r\n" +
                "Content-Type: " + partContentType + "\r\n" +
                "Content-Range: " + ContentRange.Format(ranges[i], fileLength) + "\r\n" +
                "\r\n");
            _parts[i] = new Part(header, ranges[i]);
            total += header.Length + ranges[i].Length;
        }

        // RFC 2046 §5.1.1: the close delimiter is the delimiter followed by "--"; the final CRLF ends the line.
        Closing = Encoding.ASCII.GetBytes("\r\n--" + boundary + "--\r\n");
        ContentLength = total + Closing.Length;
    }

    /// <summary>The boundary between parts.</summary>
    public string Boundary { get; }

    /// <summary>The response's Content-Type: <c>multipart/byteranges; boundary=…</c>.</summary>
    public string ContentType { get; }

    /// <summary>The parts in the order they are written: the header bytes, then the range of the file.</summary>
    public IReadOnlyList<Part> Parts => _parts;

    /// <summary>The close delimiter, written after the last part.</summary>
    public ReadOnlyMemory<byte> Closing { get; }

    /// <summary>The exact length of the whole body.</summary>
    public long ContentLength { get; }

    /// <summary>
    /// A fresh random boundary. It must not occur inside any part (RFC 2046 §5.1.1); it comes from a
    /// cryptographic generator because the files' content may be chosen by someone who would like it to.
    /// </summary>
    public static string NewBoundary() => RandomNumberGenerator.GetString(BoundaryAlphabet, BoundaryLength);

    /// <summary>One part of the body.</summary>
    /// <param name="Header">The bytes written before the range: delimiter, Content-Type, Content-Range, blank line.</param>
    /// <param name="Range">The range of the file written after the header.</param>
    internal readonly record struct Part(ReadOnlyMemory<byte> Header, ByteRange Range);
}
