using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EpollTransport.Tests.Protocols;

/// <summary>
/// A self-signed server certificate made in memory for 127.0.0.1 and localhost, and the client-side check that
/// trusts exactly that certificate and nothing else.
/// </summary>
internal static class TestCertificate
{
    private static readonly Lazy<X509Certificate2> s_certificate = new(Create);

    /// <summary>The certificate, with its private key, usable by <see cref="SslStream"/> on Linux.</summary>
    public static X509Certificate2 Server => s_certificate.Value;

    /// <summary>
    /// Accepts the server's certificate only when it is <see cref="Server"/> (by SHA-256 thumbprint) and the only
    /// complaint is its untrusted self-signed chain: a wrong name or any other certificate is refused.
    /// </summary>
    public static bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        => certificate is not null
            && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
            && string.Equals(
                certificate.GetCertHashString(HashAlgorithmName.SHA256),
                Server.GetCertHashString(HashAlgorithmName.SHA256),
                StringComparison.OrdinalIgnoreCase);

    private static X509Certificate2 Create()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=EpollTransport test server", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], critical: false));

        var now = DateTimeOffset.UtcNow;
        using var ephemeral = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        // A PFX round trip gives a certificate whose private key SslStream can use on Linux.
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), password: null);
    }
}
