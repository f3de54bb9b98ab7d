namespace Kiln.Images;

/// <summary>
/// One report of a running build: the step (<c>stage</c>, <c>debootstrap</c>, <c>agent</c>, <c>mkfs</c>,
/// <c>done</c>), the bytes written so far in it (null when unknown), and what a tool just said (a line, or null).
/// </summary>
public sealed record ImageBuildProgress(string Step, long? BytesWritten, string? Detail);

/// <summary>A finished image.</summary>
/// <param name="Path">The image file.</param>
/// <param name="SizeBytes">Its size (the file system's size).</param>
/// <param name="ContentBytes">What the root directory held before mkfs.ext4.</param>
/// <param name="Base">What it holds besides the agent.</param>
/// <param name="Elapsed">How long the build took.</param>
public sealed record ImageBuildResult(string Path, long SizeBytes, long ContentBytes, ImageBase Base, TimeSpan Elapsed);
