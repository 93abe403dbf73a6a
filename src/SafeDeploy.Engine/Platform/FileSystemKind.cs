namespace SafeDeploy.Engine.Platform;

/// <summary>Names a filesystem from its statfs(2) magic number and says whether flock on it can be trusted across machines.</summary>
internal static class FileSystemKind
{
    static readonly Dictionary<long, (string Name, bool Network)> known = new()
    {
        [0xEF53] = ("ext4", false), [0x58465342] = ("xfs", false), [0x9123683E] = ("btrfs", false),
        [0x01021994] = ("tmpfs", false), [0x794C7630] = ("overlayfs", false), [0x2FC12FC1] = ("zfs", false),
        [0x6969] = ("nfs", true), [0x0BD00BD0] = ("lustre", true), [0x47504653] = ("gpfs", true),
        [0xFF534D42] = ("cifs", true), [0xFE534D42] = ("smb2", true), [0x517B] = ("smb", true),
        [0x00C36400] = ("ceph", true), [0x01021997] = ("9p", true), [0x19830326] = ("beegfs", true),
        [0x65735546] = ("fuse", true), [0x013111A8] = ("ibrix", true), [0x61636673] = ("acfs", true),
        [0x5346414F] = ("afs", true), [0x6B414653] = ("afs", true), [0x73717368] = ("squashfs", false),
        [0x858458F6] = ("ramfs", false), [0x4d44] = ("vfat", false), [0x5346544E] = ("ntfs", false),
    };

    /// <summary>(name, is it a network or cluster filesystem) for the filesystem holding <paramref name="path"/>.</summary>
    public static (string Name, bool IsNetwork, long Magic) Of(string path)
    {
        var (type, _) = Native.StatFs(path);
        long magic = type & 0xFFFFFFFF;
        return known.TryGetValue(magic, out var k) ? (k.Name, k.Network, magic) : ($"0x{magic:x}", false, magic);
    }
}
