using System.Text;

namespace AbBench;

/// <summary>
/// A temporary folder for the scenarios' generated files: for static and disk the files they serve under
/// <see cref="Root"/>, the harness's own files (nginx.conf, nginx's logs, grpc's request body, tls's certificate)
/// beside it, so that no server serves those. It is made under the temporary folder (TMPDIR, else /tmp), only this
/// user may open it, and it is deleted with everything in it on dispose.
/// </summary>
internal sealed class TempSite : IDisposable
{
    /// <summary>One 64-byte text line, repeated to fill a file; each file starts with its own name.</summary>
    private static readonly byte[] Line = "AbBench generated file: the same 64 bytes, over and over again.\n"u8.ToArray();

    private TempSite(string folder)
    {
        Folder = folder;
        Root = Path.Combine(folder, "site");
        Directory.CreateDirectory(Root);
    }

    /// <summary>The temporary folder itself.</summary>
    public string Folder { get; }

    /// <summary>The folder the servers serve (--root, nginx's root).</summary>
    public string Root { get; }

    public static TempSite Create() => new(Directory.CreateTempSubdirectory("abbench-").FullName);

    /// <summary>
    /// Writes text files of exactly <paramref name="size"/> bytes each at these paths under <see cref="Root"/>, in
    /// parallel (thousands of them in about a second). The content is deterministic: the file's own path on the
    /// first line, then the same line over and over.
    /// </summary>
    public void Write(IReadOnlyList<string> relativePaths, int size) =>
        Parallel.ForEach(relativePaths, path =>
        {
            var full = Path.Combine(Root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(full, Content(path, size));
        });

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"warning: could not delete {Folder}: {e.Message}");
        }
    }

    private static byte[] Content(string path, int size)
    {
        var bytes = new byte[size];
        for (var at = 0; at < size; at += Line.Length)
        {
            Line.AsSpan(0, Math.Min(Line.Length, size - at)).CopyTo(bytes.AsSpan(at));
        }
        var name = Encoding.ASCII.GetBytes(path + "\n");
        name.AsSpan(0, Math.Min(name.Length, size)).CopyTo(bytes);
        return bytes;
    }
}
