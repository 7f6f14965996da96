using Grpc.Core;

namespace WebApp;

/// <summary>
/// The greeter of <c>Protos/greet.proto</c> (<c>greet.Greeter/SayHello</c>), as the ASP.NET Core gRPC template
/// serves it; Grpc.Tools generates its base class and messages at build time.
/// </summary>
internal sealed class GreeterService : Greeter.GreeterBase
{
    public override Task<HelloReply> SayHello(HelloRequest request, ServerCallContext context) =>
        Task.FromResult(new HelloReply { Message = "Hello " + request.Name });
}
