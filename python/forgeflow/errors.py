"""The exceptions forgeflow raises, one per kind of the library's errors.

Every one derives from :class:`ForgeflowError`, and from the built-in
exception a caller would catch for that kind of problem where one fits
(``ValueError`` for bad input, ``OSError`` for files and devices,
``MemoryError`` for GPU memory), so ``except ValueError`` keeps working.
A failure is always one of these, never a crash of the interpreter.
"""

__all__ = [
    "ForgeflowError",
    "TextureError",
    "InvalidTextureError",
    "UnsupportedFormatError",
    "NoSuchImageError",
    "TextureFileError",
    "NoGpuError",
    "StaleHandleError",
    "FrameOrderError",
    "DeviceLostError",
    "OutOfMemoryError",
    "BudgetError",
    "QueueFullError",
    "UploadError",
    "PoolError",
    "StagingError",
    "FrameError",
    "VirtualTextureError",
    "WriteError",
    "WrongTypeError",
    "InvalidConfigError",
    "LoadTimeoutError",
]


class ForgeflowError(Exception):
    """Base class of every forgeflow error."""


class TextureError(ForgeflowError, ValueError):
    """A texture file that cannot be read as asked (``TextureError``)."""


class InvalidTextureError(TextureError):
    """A corrupt or invalid KTX2, KTX 1, DDS or PNG file."""


class UnsupportedFormatError(TextureError):
    """A format (or supercompression) forgeflow cannot decode or upload."""


class NoSuchImageError(TextureError, IndexError):
    """A level, layer or face the file does not have."""


class TextureFileError(ForgeflowError, OSError):
    """A texture file that could not be read (missing, unreadable)."""


class NoGpuError(ForgeflowError, OSError):
    """No GPU adapter or device could be opened (install a Vulkan driver,
    e.g. Mesa's lavapipe, on a machine without a GPU)."""


class StaleHandleError(ForgeflowError, ValueError):
    """A handle whose resource was freed (``StaleHandle``)."""


class FrameOrderError(ForgeflowError):
    """A frame call out of order (``FrameOrder``)."""


class DeviceLostError(ForgeflowError, OSError):
    """The GPU device was lost; make a new Runtime (``DeviceLost``)."""


class OutOfMemoryError(ForgeflowError, MemoryError):
    """The GPU is out of memory (``OutOfMemory``)."""


class BudgetError(ForgeflowError):
    """A configured budget (pool, textures, tiles) is exhausted (``Budget``)."""


class QueueFullError(ForgeflowError):
    """More work queued for one frame than configured (``QueueFull``)."""


class UploadError(ForgeflowError):
    """A texture upload that cannot be made on this device (``Upload``)."""


class PoolError(ForgeflowError):
    """The memory pool refused an allocation (``Pool``)."""


class StagingError(ForgeflowError):
    """The staging ring refused a transfer (``Staging``)."""


class FrameError(ForgeflowError):
    """A job of a frame failed or panicked (``Frame``, ``Graph``, ``Task``)."""


class VirtualTextureError(ForgeflowError):
    """A virtual texture's tile source or page table failed (``VirtualTexture``)."""


class WriteError(ForgeflowError, ValueError):
    """A buffer write out of bounds or misaligned (``Write``)."""


class WrongTypeError(ForgeflowError, TypeError):
    """A handle used with the wrong kind of resource (``WrongType``)."""


class InvalidConfigError(ForgeflowError, ValueError):
    """A configuration value out of range (``InvalidConfig``)."""


class LoadTimeoutError(ForgeflowError, TimeoutError):
    """A texture that did not finish loading within the time given."""
