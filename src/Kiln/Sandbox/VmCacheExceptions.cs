namespace Kiln.Sandbox;

/// <summary>The VM cache could not serve: a refill failed since the last take, or its template is gone.</summary>
public sealed class VmCacheException(string message, Exception? innerException = null) : SandboxException(message, innerException);
