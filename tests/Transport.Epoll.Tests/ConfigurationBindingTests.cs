using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EpollTransport.Tests;

/// <summary>
/// The transport's options from configuration: the <c>UseEpollTransport(IConfiguration)</c> overload, and the sample,
/// which binds the sections <c>EpollTransport</c> and <c>AmpedStaticFiles</c> so that every knob is a command-line key.
/// </summary>
public class ConfigurationBindingTests
{

    [Fact]
    public async Task TheOverloadBindsTheSectionAndTheDelegateWins()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["EpollTransport:ReadBudgetPerTurn"] = "16384",
                ["EpollTransport:MaxWriteBufferSize"] = "4096",
                ["EpollTransport:ReactorCount"] = "3",
            })
            .Build();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseEpollTransport(configuration.GetSection("EpollTransport"), o => o.ReactorCount = 2);
        await using var app = builder.Build();

        var options = app.Services.GetRequiredService<IOptions<EpollTransportOptions>>().Value;
        Assert.Equal(16384, options.ReadBudgetPerTurn);
        Assert.Equal(4096, options.MaxWriteBufferSize);
        Assert.Equal(2, options.ReactorCount);
        Assert.True(options.NoDelay);
    }

    [Fact]
    public async Task TheSampleTakesTransportAndStaticFileOptionsFromTheCommandLine()
    {
        using var server = new SampleProcess(null,
            "--EpollTransport:UnsafePreferInlineScheduling", "true",
            "--AmpedStaticFiles:CacheControl", "max-age=60");
        try
        {
            var port = await server.ListeningPort.WaitAsync(LongWaitLimit);
            await server.Logged("inline scheduling: on").WaitAsync(LongWaitLimit);

            using var client = new HttpClient();
            using var response = await client.GetAsync($"http://127.0.0.1:{port}/").WaitAsync(LongWaitLimit);
            response.EnsureSuccessStatusCode();
            Assert.Equal("max-age=60", response.Headers.CacheControl?.ToString());
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"{e.Message}\nServer output:\n{server.Output()}", e);
        }
    }
}
