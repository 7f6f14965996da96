using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace StaticFiles.Amped.Http;

/// <summary>
/// Picks which precompressed sibling of a file (<c>.br</c>, <c>.gz</c>) to send, from the request's
/// Accept-Encoding (RFC 9110 §12.5.3).
/// </summary>
internal static class ContentCodingSelector
{
    /// <summary>The Brotli content coding (RFC 7932).</summary>
    public const string Brotli = "br";

    /// <summary>The gzip content coding (RFC 9110 §8.4.1.3).</summary>
    public const string Gzip = "gzip";

    /// <summary>Chooses a content coding.</summary>
    /// <param name="acceptEncoding">The Accept-Encoding field lines, as received.</param>
    /// <param name="hasBrotli">Whether a Brotli sibling exists.</param>
    /// <param name="hasGzip">Whether a gzip sibling exists.</param>
    /// <returns><see cref="Brotli"/>, <see cref="Gzip"/>, or null to send the file as it is.</returns>
    public static string? Select(StringValues acceptEncoding, bool hasBrotli, bool hasGzip)
    {
        // §12.5.3: a request without Accept-Encoding allows any coding, but the clients that omit it (scripts,
        // probes) seldom decode one, so identity is the safe answer; an empty field value asks for identity alone.
        if (StringValues.IsNullOrEmpty(acceptEncoding) || (!hasBrotli && !hasGzip))
        {
            return null;
        }

        double? br = null, gzip = null, identity = null, any = null;
        foreach (var line in acceptEncoding)
        {
            // The framework's list parser resynchronises badly after a bad member (it reads "gzip;q=x, br" as a
            // coding named "x"), so the list is split here and each member parsed alone: a malformed member is
            // skipped, and so is an empty one, which §5.6.1 says to ignore.
            foreach (var member in new StringTokenizer(new StringSegment(line), [',']))
            {
                if (!StringWithQualityHeaderValue.TryParse(member, out var coding))
                {
                    continue;
                }

                // §12.4.2: no weight means q=1. §8.4.1: coding names are case-insensitive, and "x-gzip" SHOULD be
                // taken as "gzip" (§8.4.1.3). A coding listed twice keeps its higher weight.
                var weight = coding.Quality ?? 1;
                var name = coding.Value;
                if (Is(name, Brotli))
                {
                    Raise(ref br, weight);
                }
                else if (Is(name, Gzip) || Is(name, "x-gzip"))
                {
                    Raise(ref gzip, weight);
                }
                else if (Is(name, "identity"))
                {
                    Raise(ref identity, weight);
                }
                else if (Is(name, "*"))
                {
                    Raise(ref any, weight);
                }
            }
        }

        // §12.5.3: "*" stands for every coding the field does not name (identity included), q=0 means "not
        // acceptable", and the highest weight wins. A tie between the codings goes to Brotli, the smaller file; a
        // tie with identity goes to the coding, since the client accepts both and the smaller body serves it better.
        var brWeight = hasBrotli ? br ?? any ?? 0 : 0;
        var gzipWeight = hasGzip ? gzip ?? any ?? 0 : 0;
        var best = Math.Max(brWeight, gzipWeight);
        if (best <= 0 || (identity ?? any ?? 0) > best)
        {
            return null;
        }

        return brWeight == best ? Brotli : Gzip;
    }

    private static bool Is(StringSegment name, string coding) => name.Equals(coding, StringComparison.OrdinalIgnoreCase);

    private static void Raise(ref double? slot, double weight) => slot = Math.Max(slot ?? 0, weight);
}
