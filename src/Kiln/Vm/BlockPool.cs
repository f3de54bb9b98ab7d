// Kata's placeholder pool: Firecracker cannot add a drive after boot (without PCI), but it can swap the backing file
// of an existing one (PATCH path_on_host). So N placeholder drives are attached at boot, each backed by its own empty
// sparse file, and hot-plug swaps a real file into a free one.
namespace Kiln.Vm;

/// <summary>One slot of the pool.</summary>
/// <param name="Index">The slot index.</param>
/// <param name="DriveId">The Firecracker drive id: <c>drive_N</c>.</param>
/// <param name="GuestDevice">The guest device name.</param>
/// <param name="PlaceholderPath">The slot's own placeholder file.</param>
/// <param name="HostPath">The file in the slot, or null while the placeholder is.</param>
public sealed record BlockPoolSlot(int Index, string DriveId, string GuestDevice, string PlaceholderPath, string? HostPath)
{
    /// <summary>Whether the slot holds its placeholder.</summary>
    public bool IsFree => HostPath is null;

    /// <summary>The file Firecracker should have in this slot now.</summary>
    public string BackingPath => HostPath ?? PlaceholderPath;
}

/// <summary>The placeholder pool's bookkeeping (not thread-safe: the driver serialises operations).</summary>
public sealed class BlockPool
{
    /// <summary>A placeholder's size: sparse, so it costs no disk, but not zero, which some guests dislike.</summary>
    public const long PlaceholderBytes = 1024 * 1024;

    private readonly BlockPoolSlot[] _slots;

    /// <summary>Creates a pool of <paramref name="size"/> free slots.</summary>
    /// <param name="size">How many slots.</param>
    /// <param name="firstGuestIndex">The attach-order index of slot 0 (1 when a rootfs drive comes first).</param>
    /// <param name="placeholderPath">The placeholder file of each slot.</param>
    public BlockPool(int size, int firstGuestIndex, Func<int, string> placeholderPath)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentNullException.ThrowIfNull(placeholderPath);
        _slots = new BlockPoolSlot[size];
        for (var i = 0; i < size; i++)
            _slots[i] = new BlockPoolSlot(i, DriveIdFor(i), GuestDeviceNames.ForIndex(firstGuestIndex + i), placeholderPath(i), null);
    }

    /// <summary>
    /// The drive id of slot <paramref name="index"/>: <c>drive_N</c>. Not the seed's <c>drive-N</c>: Firecracker
    /// v1.x accepts only letters, digits and underscores in resource ids.
    /// </summary>
    public static string DriveIdFor(int index) => $"drive_{index}";

    /// <summary>The slots, in order.</summary>
    public IReadOnlyList<BlockPoolSlot> Slots => _slots;

    /// <summary>How many slots.</summary>
    public int Size => _slots.Length;

    /// <summary>The first free slot, or null when all are taken.</summary>
    public BlockPoolSlot? FirstFree() => Array.Find(_slots, s => s.IsFree);

    /// <summary>Records <paramref name="hostPath"/> in slot <paramref name="index"/> (or frees it with null).</summary>
    public BlockPoolSlot Set(int index, string? hostPath)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _slots.Length);
        return _slots[index] = _slots[index] with { HostPath = hostPath };
    }

    /// <summary>Frees every slot (after the VMM stopped, the placeholders are what a new boot attaches).</summary>
    public void Reset()
    {
        for (var i = 0; i < _slots.Length; i++)
            _slots[i] = _slots[i] with { HostPath = null };
    }

    /// <summary>The slot holding <paramref name="hostPath"/>, or null.</summary>
    public BlockPoolSlot? FindByHostPath(string hostPath) =>
        Array.Find(_slots, s => s.HostPath is not null && string.Equals(s.HostPath, hostPath, StringComparison.Ordinal));

    /// <summary>Creates the placeholder files that do not exist yet; returns those it created.</summary>
    public IReadOnlyList<string> CreatePlaceholders()
    {
        var created = new List<string>();
        try
        {
            foreach (var slot in _slots)
            {
                try
                {
                    using var file = new FileStream(slot.PlaceholderPath, FileMode.CreateNew, FileAccess.Write);
                    created.Add(slot.PlaceholderPath);
                    file.SetLength(PlaceholderBytes);
                }
                catch (IOException) when (!created.Contains(slot.PlaceholderPath) && File.Exists(slot.PlaceholderPath))
                {
                    // Left by an earlier start of the same sandbox: still an empty placeholder, reused.
                }
            }
        }
        catch (Exception e)
        {
            // All or nothing: a slot that cannot be made (disk full, a directory in its place) must not leave the
            // earlier slots' files behind, as the caller never learns their names.
            foreach (var path in created)
                CleanupFailures.Run(e, () => File.Delete(path));
            throw;
        }
        return created;
    }
}
