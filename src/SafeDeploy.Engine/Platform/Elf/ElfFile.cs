using System.Runtime.InteropServices;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform.Elf;

/// <summary>ELFCLASS: the word size of an ELF file.</summary>
internal enum ElfClass { None = 0, Elf32 = 1, Elf64 = 2 }

/// <summary>e_type of an ELF file.</summary>
internal enum ElfType { None = 0, Relocatable = 1, Executable = 2, SharedObject = 3, Core = 4 }

/// <summary>What an ELF file is for the loader: ET_DYN covers both shared libraries and PIE executables.</summary>
internal enum ElfKind { SharedLibrary, PieExecutable, Executable, Relocatable, Core, Other }

/// <summary>A symbol of the dynamic symbol table; IsExported when another object can bind to it (defined, global or weak, visible).</summary>
internal sealed record ElfSymbol(string Name, bool IsExported, bool IsWeak, bool IsFunction, ulong Value, ulong Size);

/// <summary>
/// What SafeDeploy needs to know of an ELF file before a loader sees it, read by our own parser (never by parsing
/// nm/readelf output): header, program headers, the dynamic section and the dynamic symbol table. Works on files whose
/// section headers were stripped, through PT_DYNAMIC (DT_SYMTAB, DT_STRTAB, DT_HASH/DT_GNU_HASH).
/// </summary>
internal sealed class ElfFile
{
    public required string Path { get; init; }
    public ElfClass Class { get; init; }
    public bool IsLittleEndian { get; init; }
    /// <summary>e_machine (EM_X86_64 = 62, EM_AARCH64 = 183, ...).</summary>
    public ushort Machine { get; init; }
    public string MachineName => ElfMachines.Name(Machine, Class);
    public ElfType Type { get; init; }
    public ElfKind Kind { get; init; }
    /// <summary>PT_INTERP (the program interpreter) of an executable; null for a plain shared library.</summary>
    public string? Interpreter { get; init; }
    public string? SoName { get; init; }
    /// <summary>DT_NEEDED entries, in order.</summary>
    public IReadOnlyList<string> Needed { get; init; } = Array.Empty<string>();
    public IReadOnlyList<string> RunPath { get; init; } = Array.Empty<string>();
    /// <summary>Every entry of the dynamic symbol table (index 0 excluded).</summary>
    public IReadOnlyList<ElfSymbol> DynamicSymbols { get; init; } = Array.Empty<ElfSymbol>();
    public bool HasDynamicSection { get; init; }
    /// <summary>True when the symbols came from PT_DYNAMIC because there were no section headers.</summary>
    public bool SymbolsFromDynamicSegment { get; init; }
    public ulong Flags1 { get; init; }

    /// <summary>Global or weak, defined, default or protected visibility: what another object can bind to.</summary>
    public IEnumerable<string> ExportedSymbols => DynamicSymbols.Where(s => s.IsExported).Select(s => s.Name).Distinct(StringComparer.Ordinal);

    public bool MatchesHost => ElfMachines.Host is { } h && h.Machine == Machine && h.Class == Class;

    /// <summary>The first bytes of an ELF file.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 4 && head[0] == 0x7F && head[1] == (byte)'E' && head[2] == (byte)'L' && head[3] == (byte)'F';

    /// <summary>
    /// Reads <paramref name="path"/>. Throws <see cref="SafeDeployException"/> with <see cref="ErrorKind.InvalidData"/>
    /// (NotAnElfFile, ElfTruncated, ElfCorrupt) for anything that is not a well-formed ELF file, ObjectNotFound when missing.
    /// </summary>
    public static ElfFile Read(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(path))
            throw new SafeDeployException("NotAFile", ErrorKind.InvalidArgument, path, $"'{path}' is a directory, not a library.", "Give the path of a .so file.");
        FileStream stream;
        try { stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite | FileShare.Delete }); }
        catch (FileNotFoundException e) { throw new SafeDeployException("FileNotFound", ErrorKind.ObjectNotFound, path, $"'{path}' does not exist.", "Check the path (build the library first?).", e); }
        catch (DirectoryNotFoundException e) { throw new SafeDeployException("FileNotFound", ErrorKind.ObjectNotFound, path, $"'{path}' does not exist.", "Check the path (build the library first?).", e); }
        catch (UnauthorizedAccessException e) { throw new SafeDeployException("AccessDenied", ErrorKind.PermissionDenied, path, $"Cannot read '{path}': permission denied.", "Run as a user who may read it.", e); }
        using (stream)
            return new ElfParser(stream, path).Parse();
    }
}

/// <summary>Names of e_machine values, and the host's.</summary>
internal static class ElfMachines
{
    public const ushort EM_386 = 3, EM_ARM = 40, EM_X86_64 = 62, EM_AARCH64 = 183, EM_PPC64 = 21, EM_S390 = 22, EM_RISCV = 243, EM_LOONGARCH = 258, EM_MIPS = 8, EM_SPARCV9 = 43;

    /// <summary>The machine and class a library must have to be loaded into this process's architecture.</summary>
    public static (ushort Machine, ElfClass Class)? Host => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => (EM_X86_64, ElfClass.Elf64),
        Architecture.X86 => (EM_386, ElfClass.Elf32),
        Architecture.Arm64 => (EM_AARCH64, ElfClass.Elf64),
        Architecture.Arm => (EM_ARM, ElfClass.Elf32),
        Architecture.S390x => (EM_S390, ElfClass.Elf64),
        Architecture.Ppc64le => (EM_PPC64, ElfClass.Elf64),
        Architecture.LoongArch64 => (EM_LOONGARCH, ElfClass.Elf64),
        _ => null,
    };

    public static string HostName => Host is { } h ? Name(h.Machine, h.Class) : RuntimeInformation.ProcessArchitecture.ToString();

    public static string Name(ushort machine, ElfClass cls) => machine switch
    {
        EM_X86_64 => cls == ElfClass.Elf32 ? "x32" : "x86-64",
        EM_386 => "i386",
        EM_AARCH64 => "aarch64",
        EM_ARM => "arm",
        EM_PPC64 => "ppc64",
        EM_S390 => cls == ElfClass.Elf32 ? "s390" : "s390x",
        EM_RISCV => cls == ElfClass.Elf32 ? "riscv32" : "riscv64",
        EM_LOONGARCH => "loongarch64",
        EM_MIPS => "mips",
        EM_SPARCV9 => "sparcv9",
        _ => $"machine {machine}",
    };
}
