using System.IO.Compression;
using System.Xml.Linq;

namespace Packaging.Tests;

/// <summary>What `dotnet pack` puts into the two packages: README, license, XML docs, symbols and dependencies.</summary>
[Collection(PackedPackagesCollection.Name)]
public sealed class PackageContentsTests(PackedPackages packages, ITestOutputHelper output)
{
    [Theory]
    [InlineData("EpollTransport", "EpollTransport", "UseEpollTransport")]
    [InlineData("StaticFiles.Amped", "StaticFiles.Amped", "UseAmpedStaticFiles")]
    public void Package_HasReadmeLicenseDocsAndMetadata(string id, string assembly, string usage)
    {
        using var package = ZipFile.OpenRead(packages.PackagePath(id));
        var entries = package.Entries.Select(e => e.FullName).ToHashSet();
        output.WriteLine(string.Join('\n', entries.Order()));
        Assert.Contains($"lib/net10.0/{assembly}.dll", entries);
        Assert.Contains($"lib/net10.0/{assembly}.xml", entries);
        Assert.Contains("README.md", entries);
        // The symbols are in the .snupkg, not in the package.
        Assert.DoesNotContain(entries, e => e.EndsWith(".pdb", StringComparison.Ordinal));

        var readme = Read(package, "README.md");
        Assert.StartsWith($"# {id}", readme, StringComparison.Ordinal);
        Assert.Contains($"dotnet add package {id}", readme, StringComparison.Ordinal);
        Assert.Contains(usage, readme, StringComparison.Ordinal);

        var metadata = Metadata(package, id);
        Assert.Equal(id, Value(metadata, "id"));
        Assert.Equal(packages.Version, Value(metadata, "version"));
        Assert.Equal("EpollTransport contributors", Value(metadata, "authors"));
        Assert.Equal("README.md", Value(metadata, "readme"));
        var license = Element(metadata, "license");
        Assert.Equal("expression", (string?)license.Attribute("type"));
        Assert.Equal("MIT", license.Value);
        Assert.False(string.IsNullOrWhiteSpace(Value(metadata, "description")));
        Assert.Contains("linux", Value(metadata, "tags").Split(' '));
        Assert.Equal("git", (string?)Element(metadata, "repository").Attribute("type"));

        // ASP.NET Core comes as the shared framework, never as a package.
        var frameworkReferences = Element(metadata, "frameworkReferences").Elements().Single(e => e.Name.LocalName == "group");
        Assert.Equal("net10.0", (string?)frameworkReferences.Attribute("targetFramework"));
        Assert.Equal(["Microsoft.AspNetCore.App"],
            frameworkReferences.Elements().Where(e => e.Name.LocalName == "frameworkReference").Select(e => (string?)e.Attribute("name")));

        using var symbols = ZipFile.OpenRead(packages.SymbolPackagePath(id));
        Assert.Contains($"lib/net10.0/{assembly}.pdb", symbols.Entries.Select(e => e.FullName));
    }

    [Fact]
    public void EpollTransport_HasNoPackageDependencies()
    {
        using var package = ZipFile.OpenRead(packages.PackagePath("EpollTransport"));
        var group = Element(Metadata(package, "EpollTransport"), "dependencies").Elements().Single();
        Assert.Equal("net10.0", (string?)group.Attribute("targetFramework"));
        Assert.Empty(group.Elements());
    }

    [Fact]
    public void StaticFilesAmped_DependsOnEpollTransportOfTheSameVersion()
    {
        using var package = ZipFile.OpenRead(packages.PackagePath("StaticFiles.Amped"));
        var group = Element(Metadata(package, "StaticFiles.Amped"), "dependencies").Elements().Single();
        Assert.Equal("net10.0", (string?)group.Attribute("targetFramework"));
        // The analyzers (PrivateAssets="all") stay out; the project reference becomes the package dependency.
        var dependency = Assert.Single(group.Elements());
        Assert.Equal("EpollTransport", (string?)dependency.Attribute("id"));
        Assert.Equal(packages.Version, (string?)dependency.Attribute("version"));
    }

    private static string Read(ZipArchive package, string entry)
    {
        using var reader = new StreamReader(package.GetEntry(entry)!.Open());
        return reader.ReadToEnd();
    }

    private static XElement Metadata(ZipArchive package, string id)
    {
        using var stream = package.GetEntry($"{id}.nuspec")!.Open();
        return XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    private static XElement Element(XElement parent, string name) => parent.Elements().Single(e => e.Name.LocalName == name);

    private static string Value(XElement parent, string name) => Element(parent, name).Value;
}
