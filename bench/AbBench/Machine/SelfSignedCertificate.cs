using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace AbBench;

/// <summary>
/// The server certificate of the tls scenario, made by the harness each time: self-signed, for 127.0.0.1 and
/// localhost, with an ECDSA P-256 key, written without a password as a PKCS#12 file into the scenario's temporary
/// folder (a <see cref="TempSite"/>: only this user may open it, and it is deleted at the end). Nothing needs openssl.
/// </summary>
internal sealed class SelfSignedCertificate
{
    /// <summary>The file's name in its folder; result files show the folder as "&lt;temp folder&gt;".</summary>
    public const string FileName = "localhost.pfx";

    /// <summary>What the certificate is, for the result file.</summary>
    public const string Description =
        "self-signed, made by the harness for the run: ECDSA P-256 key, SHA-256 signature, CN=localhost, subject alternative names 127.0.0.1 and localhost, server authentication, valid for one day";

    private readonly byte[] _hash;

    private SelfSignedCertificate(string path, byte[] hash)
    {
        PfxPath = path;
        _hash = hash;
    }

    /// <summary>Full path of the PKCS#12 file with the certificate and its private key.</summary>
    public string PfxPath { get; }

    /// <summary>The sample's arguments that make Kestrel serve the certificate at <paramref name="path"/> on its https URLs.</summary>
    public static string[] KestrelArgs(string path) => ["--Kestrel:Certificates:Default:Path", path];

    /// <summary>Makes a certificate and writes it as <see cref="FileName"/> into <paramref name="folder"/>.</summary>
    public static SelfSignedCertificate Create(string folder)
    {
        // ECDSA rather than RSA: wrk and h2load open all their connections anew in every run, and an RSA-2048
        // signature per handshake costs the server's one core many times an ECDSA P-256 one. The runs are meant to
        // measure the transport carrying TLS records, not the handshakes.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], critical: false));

        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddHours(-1), now.AddDays(1));
        var path = Path.Combine(folder, FileName);
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12));
        return new SelfSignedCertificate(path, certificate.GetCertHash(HashAlgorithmName.SHA256));
    }

    /// <summary>
    /// For the harness's own HTTPS client: accepts this certificate and no other. Its chain is untrusted (it is
    /// self-signed), so that error is the one that is let through; a wrong name still fails.
    /// </summary>
    public bool Validate(X509Certificate? presented, SslPolicyErrors errors) =>
        presented is not null
        && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
        && presented.GetCertHash(HashAlgorithmName.SHA256).AsSpan().SequenceEqual(_hash);
}
