using System.Buffers.Binary;
using System.Diagnostics;
using SafeDeploy.Engine.Errors;
using SafeDeploy.Engine.Platform.Elf;
using SafeDeploy.Tests.Infrastructure;
using Xunit;

namespace SafeDeploy.Tests.NativeShim;

public class ElfReaderTests
{
    [Fact]
    public void GoodShim_IsAHostSharedLibrary_ExportingItsSymbols_AndNeedingLibc()
    {
        var elf = ElfFile.Read(ShimFixtures.Good);
        Assert.Equal(ElfClass.Elf64, elf.Class);
        Assert.True(elf.IsLittleEndian);
        Assert.Equal(ElfMachines.EM_X86_64, elf.Machine);
        Assert.True(elf.MatchesHost);
        Assert.Equal(ElfType.SharedObject, elf.Type);
        Assert.Equal(ElfKind.SharedLibrary, elf.Kind);
        Assert.Null(elf.Interpreter);
        var exported = elf.ExportedSymbols.ToHashSet();
        Assert.Contains("shim_version", exported);
        Assert.Contains("shim_init_count", exported);
        Assert.Contains("uname", exported);
        Assert.DoesNotContain("shim_init", exported); // static: not in the dynamic symbol table at all
        Assert.DoesNotContain("dlsym", exported); // imported, not exported
        Assert.Contains(elf.DynamicSymbols, s => s.Name == "dlsym" && !s.IsExported);
        Assert.Contains("libc.so.6", elf.Needed);
        Assert.False(elf.SymbolsFromDynamicSegment);
    }

    [Fact]
    public void NoSymbolVariant_LinksButDoesNotExportShimVersion()
    {
        var elf = ElfFile.Read(ShimFixtures.NoSymbol);
        Assert.Equal(ElfKind.SharedLibrary, elf.Kind);
        Assert.DoesNotContain("shim_version", elf.ExportedSymbols);
        Assert.Contains("shim_init_count", elf.ExportedSymbols);
    }

    [Fact]
    public void NeedsMissingVariant_ListsItsUnresolvableDependency()
    {
        var elf = ElfFile.Read(ShimFixtures.NeedsMissing);
        Assert.Contains("libshimdep_gone.so", elf.Needed);
        Assert.False(File.Exists(Path.Combine(ShimFixtures.Dir, "libshimdep_gone.so")));
    }

    [Fact]
    public void Executables_AreToldApartFromLibraries_EvenPieWhichIsAlsoEtDyn()
    {
        var exec = ElfFile.Read(ShimFixtures.Executable);
        Assert.Equal(ElfType.Executable, exec.Type);
        Assert.Equal(ElfKind.Executable, exec.Kind);

        var pie = ElfFile.Read(ShimFixtures.PieExecutable);
        Assert.Equal(ElfType.SharedObject, pie.Type);
        Assert.Equal(ElfKind.PieExecutable, pie.Kind);
        Assert.NotNull(pie.Interpreter);
        Assert.StartsWith("/", pie.Interpreter);
    }

    [Fact]
    public void Libc_WhichHasAnInterpreterButASoname_IsALibrary()
    {
        var libc = new[] { "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib64/libc.so.6" }.FirstOrDefault(File.Exists);
        if (libc is null) return; // not a glibc x86-64 system: nothing to compare against
        var elf = ElfFile.Read(libc);
        Assert.Equal("libc.so.6", elf.SoName);
        Assert.Equal(ElfKind.SharedLibrary, elf.Kind);
        Assert.Contains("malloc", elf.ExportedSymbols);
    }

    [Fact]
    public void ThirtyTwoBitAndForeignArchitecture_AreReadAndDoNotMatchTheHost()
    {
        using var dir = new TempDir("elf");
        var lib32 = ShimFixtures.Shim32;
        if (lib32 is not null)
        {
            var e32 = ElfFile.Read(lib32);
            Assert.Equal(ElfClass.Elf32, e32.Class);
            Assert.Equal(ElfMachines.EM_386, e32.Machine);
            Assert.Equal("i386", e32.MachineName);
            Assert.False(e32.MatchesHost);
            Assert.Contains("shim_version", e32.ExportedSymbols);
        }
        // Hand-made: the good shim with e_machine = EM_AARCH64 (offset 18), as a cross-compiled copy would be.
        var arm = ShimFixtures.PatchedCopy(ShimFixtures.Good, dir["libshim-arm64.so"], 18, ElfMachines.EM_AARCH64);
        var foreign = ElfFile.Read(arm);
        Assert.Equal("aarch64", foreign.MachineName);
        Assert.False(foreign.MatchesHost);
        Assert.Contains("shim_version", foreign.ExportedSymbols);
    }

    [Fact]
    public void WithoutSectionHeaders_SymbolsComeFromTheDynamicSegment_ThroughGnuHashAndSysvHash()
    {
        using var dir = new TempDir("elf");
        var expected = ElfFile.Read(ShimFixtures.Good).ExportedSymbols.OrderBy(s => s, StringComparer.Ordinal).ToList();

        var gnu = StripSectionHeaders(ShimFixtures.Good, dir["gnu-stripped.so"]);
        var e = ElfFile.Read(gnu);
        Assert.True(e.SymbolsFromDynamicSegment);
        Assert.Equal(expected, e.ExportedSymbols.OrderBy(s => s, StringComparer.Ordinal).ToList());
        Assert.Contains("libc.so.6", e.Needed);

        // The same library linked with only the old SysV DT_HASH table.
        var sysv = dir["sysv.so"];
        Run("gcc", "-shared", "-fPIC", "-fvisibility=hidden", "-pthread", "-Wl,--hash-style=sysv", "-o", sysv, Path.Combine(ShimFixtures.Source, "shim.c"), "-ldl");
        var withSections = ElfFile.Read(sysv).ExportedSymbols.OrderBy(s => s, StringComparer.Ordinal).ToList();
        var s = ElfFile.Read(StripSectionHeaders(sysv, dir["sysv-stripped.so"]));
        Assert.True(s.SymbolsFromDynamicSegment);
        Assert.Equal(withSections, s.ExportedSymbols.OrderBy(x => x, StringComparer.Ordinal).ToList());
        Assert.Contains("shim_version", withSections);
    }

    [Fact]
    public void TextFile_EmptyFile_AndScript_AreNotElf_WithInvalidData()
    {
        using var dir = new TempDir("elf");
        foreach (var (name, content, words) in new[] { ("notes.txt", "just some text\n", "text file"), ("empty.so", "", "empty"), ("run.sh", "#!/bin/sh\necho hi\n", "script") })
        {
            var e = Assert.Throws<SafeDeployException>(() => ElfFile.Read(dir.Write(name, content)));
            Assert.Equal("NotAnElfFile", e.ErrorId);
            Assert.Equal(ErrorKind.InvalidData, e.Kind);
            Assert.Equal(dir[name], e.Target);
            Assert.Contains(words, e.Message);
        }
    }

    [Fact]
    public void MissingFile_IsObjectNotFound()
    {
        var e = Assert.Throws<SafeDeployException>(() => ElfFile.Read("/nonexistent/libnothing.so"));
        Assert.Equal("FileNotFound", e.ErrorId);
        Assert.Equal(ErrorKind.ObjectNotFound, e.Kind);
    }

    [Fact]
    public void EveryTruncatedCopy_GivesAClearInvalidDataError_NeverAnotherException()
    {
        using var dir = new TempDir("elf");
        var bytes = File.ReadAllBytes(ShimFixtures.Good);
        var cuts = new[] { 1, 4, 10, 16, 20, 40, 63, 64, 100, 500, 1000, bytes.Length / 2, bytes.Length - 100, bytes.Length - 1 };
        foreach (var cut in cuts)
        {
            var path = dir[$"cut{cut}.so"];
            File.WriteAllBytes(path, bytes[..cut]);
            var e = Assert.Throws<SafeDeployException>(() => ElfFile.Read(path));
            Assert.Equal(ErrorKind.InvalidData, e.Kind);
            Assert.True(e.ErrorId is "ElfTruncated" or "ElfCorrupt" or "NotAnElfFile", $"cut {cut}: {e.ErrorId}");
            Assert.Equal(path, e.Target);
        }
        File.WriteAllBytes(dir["half.so"], bytes[..(bytes.Length / 2)]);
        var half = Assert.Throws<SafeDeployException>(() => ElfFile.Read(dir["half.so"]));
        Assert.Equal("ElfTruncated", half.ErrorId);
        Assert.Contains("beyond the end of the file", half.Message);
    }

    [Fact]
    public void RandomlyCorruptedCopies_EitherParseOrFailWithInvalidData()
    {
        using var dir = new TempDir("elf");
        var original = File.ReadAllBytes(ShimFixtures.Good);
        var rng = new Random(7);
        var path = dir["corrupt.so"];
        for (int round = 0; round < 300; round++)
        {
            var bytes = (byte[])original.Clone();
            int hits = 1 + rng.Next(8);
            for (int h = 0; h < hits; h++)
            {
                // Aim most damage at the headers and tables the reader follows (the first 4 KiB and the section headers at the end).
                int at = rng.Next(3) switch { 0 => rng.Next(64), 1 => rng.Next(Math.Min(4096, bytes.Length)), _ => bytes.Length - 1 - rng.Next(2048) };
                bytes[at] = (byte)rng.Next(256);
            }
            File.WriteAllBytes(path, bytes);
            try { ElfFile.Read(path); }
            catch (SafeDeployException e) when (e.Kind == ErrorKind.InvalidData) { }
        }
    }

    /// <summary>What sstrip does: no section headers at all (e_shoff, e_shnum, e_shstrndx zeroed); the loader does not need them.</summary>
    static string StripSectionHeaders(string source, string destination)
    {
        var bytes = File.ReadAllBytes(source);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(40), 0);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(60), 0);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(62), 0);
        File.WriteAllBytes(destination, bytes);
        return destination;
    }

    static void Run(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
    }
}
