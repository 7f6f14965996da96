using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Headers;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace StaticFiles.Amped.Http;

/// <summary>What the conditional request headers decide for a request on an existing file.</summary>
internal enum PreconditionResult
{
    /// <summary>No condition stops the request: serve it (ranges may still apply).</summary>
    Proceed,

    /// <summary>Answer 304 Not Modified.</summary>
    NotModified,

    /// <summary>Answer 412 Precondition Failed.</summary>
    PreconditionFailed,
}

/// <summary>
/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since against a file's validators, in the
/// order of RFC 9110 §13.2.2. The caller has a file, so a selected representation always exists; If-Range is not a
/// precondition here (it belongs to <see cref="RangeEvaluator"/>, §13.1.5).
/// </summary>
internal static class Preconditions
{
    /// <summary>Evaluates the request's preconditions.</summary>
    /// <param name="headers">The request headers.</param>
    /// <param name="method">The request method.</param>
    /// <param name="v">The validators of the file the request selects.</param>
    public static PreconditionResult Evaluate(RequestHeaders headers, string method, in FileValidators v)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(method);

        // §13.2.2 step 1, then step 2 only when If-Match is absent.
        if (IsPresent(headers, HeaderNames.IfMatch))
        {
            // §13.1.1: strong comparison. The framework drops list members it cannot parse; a field with nothing
            // usable left matches nothing, so it fails rather than silently passing a lost-update guard.
            if (!AnyMatches(headers.IfMatch, v.ETag, useStrongComparison: true))
            {
                return PreconditionResult.PreconditionFailed;
            }
        }
        else if (headers.IfUnmodifiedSince is { } unmodifiedSince && v.LastModified > unmodifiedSince)
        {
            // §13.1.4: an invalid date parses to null and is ignored.
            return PreconditionResult.PreconditionFailed;
        }

        var isGetOrHead = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);

        // §13.2.2 step 3, then step 4 only when If-None-Match is absent: §13.1.3 says to ignore If-Modified-Since
        // whenever If-None-Match is sent, even one we cannot use.
        if (IsPresent(headers, HeaderNames.IfNoneMatch))
        {
            // §13.1.2: weak comparison; a match means the client's copy is current.
            if (AnyMatches(headers.IfNoneMatch, v.ETag, useStrongComparison: false))
            {
                return isGetOrHead ? PreconditionResult.NotModified : PreconditionResult.PreconditionFailed;
            }
        }
        else if (isGetOrHead && headers.IfModifiedSince is { } modifiedSince && v.LastModified <= modifiedSince)
        {
            // §13.1.3: only for GET and HEAD, only with a valid date (an invalid one parses to null).
            return PreconditionResult.NotModified;
        }

        return PreconditionResult.Proceed;
    }

    // §13.1.1 and §13.1.2: "*" matches any current representation, and the caller has one.
    private static bool AnyMatches(IList<EntityTagHeaderValue> tags, EntityTagHeaderValue current, bool useStrongComparison)
    {
        foreach (var tag in tags)
        {
            if (tag.Equals(EntityTagHeaderValue.Any) || tag.Compare(current, useStrongComparison))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsPresent(RequestHeaders headers, string name) => !StringValues.IsNullOrEmpty(headers.Headers[name]);
}
