using System.Buffers.Binary;
using System.Text;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform.Elf;

/// <summary>
/// The parser behind <see cref="ElfFile.Read"/>. Every offset and count read from the file is checked against the file's
/// length before it is used, so a truncated or corrupt file ends in one clear InvalidData error, never an exception from
/// deep inside (or an allocation the size of a garbage count).
/// </summary>
internal sealed class ElfParser
{
    const uint PT_LOAD = 1, PT_DYNAMIC = 2, PT_INTERP = 3;
    const uint SHT_STRTAB = 3, SHT_DYNSYM = 11, SHT_NOBITS = 8;
    const long DT_NULL = 0, DT_NEEDED = 1, DT_HASH = 4, DT_STRTAB = 5, DT_SYMTAB = 6, DT_STRSZ = 10, DT_SYMENT = 11,
        DT_SONAME = 14, DT_RPATH = 15, DT_RUNPATH = 29, DT_GNU_HASH = 0x6ffffef5, DT_FLAGS_1 = 0x6ffffffb;
    const ulong DF_1_PIE = 0x08000000;
    const int MaxSymbols = 4_000_000;

    readonly Stream stream;
    readonly string path;
    readonly long length;
    bool little = true;
    bool is64;

    record struct Segment(uint Type, ulong Offset, ulong VAddr, ulong FileSize, ulong MemSize);
    record struct Section(uint Name, uint Type, ulong Addr, ulong Offset, ulong Size, uint Link, ulong EntSize);

    public ElfParser(Stream stream, string path)
    {
        this.stream = stream;
        this.path = path;
        length = stream.Length;
    }

    public ElfFile Parse()
    {
        var ident = ReadAvailable(0, 16);
        if (!ElfFile.HasMagic(ident))
            throw new SafeDeployException("NotAnElfFile", ErrorKind.InvalidData, path,
                length == 0 ? $"'{path}' is empty, not an ELF library." : $"'{path}' is not an ELF file (no \\x7fELF magic at its start): {Describe(ident)}.",
                "Give the path of a compiled shared library (.so), e.g. the output of gcc -shared.");
        if (ident.Length < 16) throw Truncated("ELF identification", 0, 16);
        var cls = (ElfClass)ident[4];
        if (cls is not (ElfClass.Elf32 or ElfClass.Elf64)) throw Corrupt($"its class byte is {ident[4]} (expected 1 for 32-bit or 2 for 64-bit)");
        if (ident[5] is not (1 or 2)) throw Corrupt($"its data-encoding byte is {ident[5]} (expected 1, little-endian, or 2, big-endian)");
        if (ident[6] != 1) throw Corrupt($"its ELF version byte is {ident[6]} (expected 1)");
        is64 = cls == ElfClass.Elf64;
        little = ident[5] == 1;

        var h = Read(0, is64 ? 64UL : 52UL, "ELF header");
        var type = (ElfType)U16(h, 16);
        ushort machine = U16(h, 18);
        ulong phoff = is64 ? U64(h, 32) : U32(h, 28);
        ulong shoff = is64 ? U64(h, 40) : U32(h, 32);
        int o = is64 ? 54 : 42;
        int phentsize = U16(h, o), phnum = U16(h, o + 2), shentsize = U16(h, o + 4), shnum = U16(h, o + 6), shstrndx = U16(h, o + 8);

        var segments = ReadSegments(phoff, phentsize, phnum);
        var sections = ReadSections(shoff, shentsize, shnum);

        string? interp = null;
        if (segments.FirstOrDefault(s => s.Type == PT_INTERP) is { FileSize: > 0 } pi)
            interp = CString(Read(pi.Offset, pi.FileSize, "program interpreter (PT_INTERP)"), 0);

        var dynamic = ReadDynamic(segments);
        string? soname = null;
        var needed = new List<string>();
        var runpath = new List<string>();
        ulong flags1 = 0;
        List<ElfSymbol> symbols = new();
        bool fromSegment = false;

        if (dynamic.Count > 0)
        {
            long Get(long tag) => dynamic.FirstOrDefault(d => d.Tag == tag).Value is var v ? (long)v : 0;
            flags1 = dynamic.Where(d => d.Tag == DT_FLAGS_1).Select(d => d.Value).FirstOrDefault();

            // The dynamic string table: prefer the section that .dynsym links to, else DT_STRTAB/DT_STRSZ mapped through PT_LOAD.
            byte[]? dynstr = null;
            var dynsymSection = sections.FirstOrDefault(s => s.Type == SHT_DYNSYM);
            if (dynsymSection.Type == SHT_DYNSYM && dynsymSection.Link < sections.Count && sections[(int)dynsymSection.Link] is { Type: SHT_STRTAB } strSec)
                dynstr = Read(strSec.Offset, strSec.Size, ".dynstr section");
            else if (dynamic.Any(d => d.Tag == DT_STRTAB))
            {
                ulong strtab = (ulong)Get(DT_STRTAB), strsz = (ulong)Get(DT_STRSZ);
                dynstr = Read(ToOffset(segments, strtab, "DT_STRTAB"), strsz, "dynamic string table (DT_STRTAB)");
            }

            foreach (var d in dynamic)
            {
                if (d.Tag is DT_NEEDED or DT_SONAME or DT_RUNPATH or DT_RPATH)
                {
                    if (dynstr is null) throw Corrupt("its dynamic section names libraries but it has no dynamic string table");
                    var s = CString(dynstr, d.Value, "DT_NEEDED/DT_SONAME string");
                    if (d.Tag == DT_NEEDED) needed.Add(s);
                    else if (d.Tag == DT_SONAME) soname = s;
                    else runpath.AddRange(s.Split(':', StringSplitOptions.RemoveEmptyEntries));
                }
            }

            if (dynsymSection.Type == SHT_DYNSYM && dynsymSection.Size > 0)
            {
                if (dynstr is null) throw Corrupt(".dynsym has no string table");
                ulong ent = dynsymSection.EntSize == 0 ? (ulong)(is64 ? 24 : 16) : dynsymSection.EntSize;
                symbols = ReadSymbols(dynsymSection.Offset, dynsymSection.Size / ent, ent, dynstr);
            }
            else if (sections.Count == 0 && dynamic.Any(d => d.Tag == DT_SYMTAB) && dynstr is not null)
            {
                ulong symtab = ToOffset(segments, (ulong)Get(DT_SYMTAB), "DT_SYMTAB");
                ulong ent = (ulong)Get(DT_SYMENT) is var e && e != 0 ? e : (ulong)(is64 ? 24 : 16);
                ulong count = dynamic.Any(x => x.Tag == DT_HASH) ? SysvHashCount(ToOffset(segments, (ulong)Get(DT_HASH), "DT_HASH"))
                    : dynamic.Any(x => x.Tag == DT_GNU_HASH) ? GnuHashCount(ToOffset(segments, (ulong)Get(DT_GNU_HASH), "DT_GNU_HASH"))
                    : throw Corrupt("it has no section headers and neither DT_HASH nor DT_GNU_HASH, so its symbol count is unknown");
                symbols = ReadSymbols(symtab, count, ent, dynstr);
                fromSegment = true;
            }
        }

        var kind = type switch
        {
            ElfType.Executable => ElfKind.Executable,
            ElfType.Relocatable => ElfKind.Relocatable,
            ElfType.Core => ElfKind.Core,
            // ET_DYN is a library or a PIE executable: DF_1_PIE says so outright; older linkers leave only PT_INTERP without a
            // SONAME (glibc's libc.so.6 has PT_INTERP too, but also a SONAME: it is a library that can also be run).
            ElfType.SharedObject => (flags1 & DF_1_PIE) != 0 || (interp is not null && soname is null) ? ElfKind.PieExecutable : ElfKind.SharedLibrary,
            _ => ElfKind.Other,
        };

        return new ElfFile
        {
            Path = path, Class = is64 ? ElfClass.Elf64 : ElfClass.Elf32, IsLittleEndian = little, Machine = machine, Type = type,
            Kind = kind, Interpreter = interp, SoName = soname, Needed = needed, RunPath = runpath, DynamicSymbols = symbols,
            HasDynamicSection = dynamic.Count > 0, SymbolsFromDynamicSegment = fromSegment, Flags1 = flags1,
        };
    }

    List<Segment> ReadSegments(ulong phoff, int entsize, int count)
    {
        var list = new List<Segment>();
        if (count == 0) return list;
        int min = is64 ? 56 : 32;
        if (entsize < min) throw Corrupt($"its program header entry size is {entsize} (at least {min} expected)");
        var table = Read(phoff, (ulong)entsize * (ulong)count, "program header table");
        for (int i = 0; i < count; i++)
        {
            int b = i * entsize;
            list.Add(is64
                ? new Segment(U32(table, b), U64(table, b + 8), U64(table, b + 16), U64(table, b + 32), U64(table, b + 40))
                : new Segment(U32(table, b), U32(table, b + 4), U32(table, b + 8), U32(table, b + 16), U32(table, b + 20)));
        }
        return list;
    }

    List<Section> ReadSections(ulong shoff, int entsize, int count)
    {
        var list = new List<Section>();
        if (shoff == 0) return list;
        int min = is64 ? 64 : 40;
        if (entsize < min) throw Corrupt($"its section header entry size is {entsize} (at least {min} expected)");
        Section ReadOne(byte[] t, int b) => is64
            ? new Section(U32(t, b), U32(t, b + 4), U64(t, b + 16), U64(t, b + 24), U64(t, b + 32), U32(t, b + 40), U64(t, b + 56))
            : new Section(U32(t, b), U32(t, b + 4), U32(t, b + 12), U32(t, b + 16), U32(t, b + 20), U32(t, b + 24), U32(t, b + 36));
        if (count == 0)
        {
            // Extended numbering: more than 0xff00 sections, the real count sits in section 0's sh_size.
            var first = ReadOne(Read(shoff, (ulong)entsize, "section header table"), 0);
            if (first.Size == 0 || first.Size > (ulong)(length / entsize)) return list;
            count = (int)first.Size;
        }
        var table = Read(shoff, (ulong)entsize * (ulong)count, "section header table");
        for (int i = 0; i < count; i++) list.Add(ReadOne(table, i * entsize));
        foreach (var s in list)
            if (s.Type != SHT_NOBITS && s.Type != 0 && s.Size > 0 && (s.Offset > (ulong)length || s.Size > (ulong)length - s.Offset))
                throw Truncated("a section", s.Offset, s.Size);
        return list;
    }

    List<(long Tag, ulong Value)> ReadDynamic(List<Segment> segments)
    {
        var list = new List<(long, ulong)>();
        var dyn = segments.FirstOrDefault(s => s.Type == PT_DYNAMIC);
        if (dyn.Type != PT_DYNAMIC || dyn.FileSize == 0) return list;
        var raw = Read(dyn.Offset, dyn.FileSize, "dynamic section (PT_DYNAMIC)");
        int ent = is64 ? 16 : 8;
        for (int b = 0; b + ent <= raw.Length; b += ent)
        {
            long tag = is64 ? (long)U64(raw, b) : (int)U32(raw, b);
            ulong val = is64 ? U64(raw, b + 8) : U32(raw, b + 4);
            if (tag == DT_NULL) break;
            list.Add((tag, val));
        }
        return list;
    }

    List<ElfSymbol> ReadSymbols(ulong offset, ulong count, ulong entsize, byte[] strtab)
    {
        int min = is64 ? 24 : 16;
        if (entsize < (ulong)min) throw Corrupt($"its symbol entry size is {entsize} (at least {min} expected)");
        if (count > MaxSymbols || count * entsize > (ulong)length) throw Truncated("dynamic symbol table", offset, count * entsize);
        var table = Read(offset, count * entsize, "dynamic symbol table");
        var list = new List<ElfSymbol>((int)count);
        for (ulong i = 1; i < count; i++) // entry 0 is the reserved null symbol
        {
            int b = (int)(i * entsize);
            uint name = U32(table, b);
            byte info, other; ushort shndx; ulong value, size;
            if (is64) { info = table[b + 4]; other = table[b + 5]; shndx = U16(table, b + 6); value = U64(table, b + 8); size = U64(table, b + 16); }
            else { value = U32(table, b + 4); size = U32(table, b + 8); info = table[b + 12]; other = table[b + 13]; shndx = U16(table, b + 14); }
            int bind = info >> 4, stype = info & 0xF, visibility = other & 3;
            if (name == 0) continue;
            if (stype is 3 /* SECTION */ or 4 /* FILE */) continue;
            // Exported: defined (not SHN_UNDEF), global/weak/unique binding, default or protected visibility.
            bool exported = shndx != 0 && (bind is 1 or 2 or 10) && (visibility is 0 or 3);
            list.Add(new ElfSymbol(CString(strtab, name, "symbol name"), exported, bind == 2, stype is 2 /* FUNC */ or 10 /* IFUNC */, value, size));
        }
        return list;
    }

    ulong SysvHashCount(ulong offset)
    {
        var h = Read(offset, 8, "DT_HASH table");
        return U32(h, 4); // nchain equals the number of symbols
    }

    ulong GnuHashCount(ulong offset)
    {
        var h = Read(offset, 16, "DT_GNU_HASH header");
        uint nbuckets = U32(h, 0), symoffset = U32(h, 4), bloomSize = U32(h, 8);
        ulong bucketsAt = offset + 16 + (ulong)bloomSize * (ulong)(is64 ? 8 : 4);
        if (nbuckets > length / 4) throw Corrupt($"its DT_GNU_HASH table claims {nbuckets} buckets");
        var buckets = Read(bucketsAt, (ulong)nbuckets * 4, "DT_GNU_HASH buckets");
        uint max = 0;
        for (int i = 0; i < nbuckets; i++) max = Math.Max(max, U32(buckets, i * 4));
        if (max < symoffset) return symoffset;
        ulong chainsAt = bucketsAt + (ulong)nbuckets * 4;
        for (ulong idx = max; ; idx++)
        {
            if (idx - symoffset > MaxSymbols) throw Corrupt("its DT_GNU_HASH chain never ends");
            var c = Read(chainsAt + (idx - symoffset) * 4, 4, "DT_GNU_HASH chain");
            if ((U32(c, 0) & 1) != 0) return idx + 1;
        }
    }

    ulong ToOffset(List<Segment> segments, ulong vaddr, string what)
    {
        foreach (var s in segments)
            if (s.Type == PT_LOAD && vaddr >= s.VAddr && vaddr - s.VAddr < s.FileSize)
                return s.Offset + (vaddr - s.VAddr);
        throw Corrupt($"its {what} address 0x{vaddr:x} lies in no loadable segment");
    }

    byte[] Read(ulong offset, ulong count, string what)
    {
        if (offset > (ulong)length || count > (ulong)length - offset) throw Truncated(what, offset, count);
        var buffer = new byte[count];
        stream.Position = (long)offset;
        stream.ReadExactly(buffer);
        return buffer;
    }

    byte[] ReadAvailable(long offset, int count)
    {
        var buffer = new byte[Math.Max(0, Math.Min(count, length - offset))];
        stream.Position = offset;
        stream.ReadExactly(buffer);
        return buffer;
    }

    string CString(byte[] table, ulong at, string what = "string")
    {
        if (at >= (ulong)table.Length) throw Corrupt($"a {what} points outside its string table (offset {at} of {table.Length})");
        int start = (int)at;
        int end = Array.IndexOf(table, (byte)0, start);
        if (end < 0) throw Corrupt($"a {what} at offset {at} is not terminated inside its string table");
        return Encoding.UTF8.GetString(table, start, end - start);
    }

    ushort U16(byte[] b, int at) => little ? BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(at));
    uint U32(byte[] b, int at) => little ? BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(at));
    ulong U64(byte[] b, int at) => little ? BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(at));

    SafeDeployException Truncated(string what, ulong offset, ulong count) =>
        new("ElfTruncated", ErrorKind.InvalidData, path,
            $"'{path}' is truncated or corrupt: its {what} (bytes {offset}..{offset + count}) lies beyond the end of the file ({length} bytes).",
            "Copy or build the library again; a partial copy must never be loaded.");

    SafeDeployException Corrupt(string why) =>
        new("ElfCorrupt", ErrorKind.InvalidData, path, $"'{path}' is a corrupt ELF file: {why}.", "Build the library again.");

    static string Describe(byte[] head)
    {
        if (head.Length >= 2 && head[0] == '#' && head[1] == '!') return "it is a script";
        bool text = head.All(b => b is >= 0x20 and < 0x7F or (byte)'\n' or (byte)'\r' or (byte)'\t');
        return text ? "it looks like a text file" : $"its first bytes are {Convert.ToHexString(head.AsSpan(0, Math.Min(4, head.Length)))}";
    }
}
