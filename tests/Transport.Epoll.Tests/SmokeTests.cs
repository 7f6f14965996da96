using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace EpollTransport.Tests;

public class SmokeTests
{
    [Fact]
    public async Task ServesPlaintext()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseEpollTransport(o => o.ReactorCount = 2);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var app = builder.Build();
        app.MapGet("/plaintext", () => "Hello, World!");
        await app.StartAsync();
        var address = app.Urls.First();
        using var client = new HttpClient();
        for (int i = 0; i < 10; i++)
        {
            Assert.Equal("Hello, World!", await client.GetStringAsync(address + "/plaintext"));
        }
        await app.StopAsync();
    }
}
