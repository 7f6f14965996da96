using System.Globalization;

namespace StaticFiles.Amped.Http;

/// <summary>Formats Content-Range field values for byte ranges (RFC 9110 §14.4).</summary>
internal static class ContentRange
{
    /// <summary>
    /// <c>bytes first-last/length</c>: the range a 206 carries, in its header or in a multipart part (§14.4).
    /// </summary>
    /// <param name="range">The range sent.</param>
    /// <param name="length">The complete length of the file.</param>
    public static string Format(ByteRange range, long length) =>
        string.Create(CultureInfo.InvariantCulture, $"bytes {range.Start}-{range.End}/{length}");

    /// <summary><c>bytes */length</c>: what a 416 carries so the client learns the current length (§15.5.17).</summary>
    /// <param name="length">The complete length of the file.</param>
    public static string Unsatisfied(long length) =>
        string.Create(CultureInfo.InvariantCulture, $"bytes */{length}");
}
