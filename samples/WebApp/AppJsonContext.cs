using System.Text.Json.Serialization;

namespace WebApp;

/// <summary>The body of <c>GET /json</c>.</summary>
internal sealed record JsonMessage(string Message);

/// <summary>
/// Source-generated serialization metadata: no reflection at run time, so <c>/json</c> and <c>/grpc/calls</c> stay
/// trim- and AOT-safe and skip the first-call metadata cost.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(JsonMessage))]
[JsonSerializable(typeof(GrpcCallCounts))]
internal sealed partial class AppJsonContext : JsonSerializerContext;
