using Microsoft.AspNetCore.Http;

namespace StaticFiles.Amped.Paths;

/// <summary>
/// Turns the part of a request path below the middleware's prefix into a path relative to the root, or refuses it.
/// This is the first guard; the kernel is the second (<c>openat2</c> with <c>RESOLVE_BENEATH</c> refuses anything that
/// resolves outside the root, symlinks included).
/// </summary>
internal static class RequestPaths
{
    /// <summary>
    /// <paramref name="relative"/> is the path without its leading slash (empty for the root folder) and
    /// <paramref name="endsWithSlash"/> says whether the request named a folder. False for paths that are never
    /// served: NUL, backslashes (a separator to some clients), empty, <c>.</c> or <c>..</c> segments, and dot files
    /// unless <paramref name="serveDotFiles"/>.
    /// </summary>
    public static bool TryGetRelative(PathString subpath, bool serveDotFiles, out string relative, out bool endsWithSlash)
    {
        relative = "";
        var value = subpath.Value ?? "";
        // An empty subpath is the RequestPath itself, without its slash: a folder to redirect, as "/docs" is.
        endsWithSlash = value.Length > 0 && value[^1] == '/';
        if (value.Length == 0 || value == "/")
        {
            return true;
        }
        if (value.AsSpan().IndexOfAny('\0', '\\') >= 0)
        {
            return false;
        }

        var body = value.AsSpan(1, value.Length - (endsWithSlash ? 2 : 1));
        foreach (var range in body.Split('/'))
        {
            var segment = body[range];
            if (segment.IsEmpty || segment is "." or ".." || (segment[0] == '.' && !serveDotFiles))
            {
                return false;
            }
        }
        relative = body.ToString();
        return true;
    }
}
