using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace EpollTransport.Tests.Http;

/// <summary>What the <c>/sha256</c> endpoints of the HTTP suites answer: a body's length and SHA-256, read as it streams in.</summary>
internal static class BodyHash
{
    /// <summary>Reads the whole request body and returns <c>"length:HEX"</c>.</summary>
    public static async Task<string> OfRequestAsync(HttpContext context)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long count = 0;
        var reader = context.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(context.RequestAborted);
            foreach (var segment in result.Buffer)
            {
                hash.AppendData(segment.Span);
                count += segment.Length;
            }
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return $"{count}:{Convert.ToHexString(hash.GetHashAndReset())}";
            }
        }
    }
}
