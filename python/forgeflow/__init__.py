"""forgeflow from Python: texture files, the streaming runtime and virtual
textures, over the same Rust runtime a renderer embeds.

- :mod:`forgeflow.texture`: read, validate, decode and transcode KTX2, KTX 1,
  DDS and PNG files, without a GPU.
- :class:`Runtime`: the runtime on a device it opens itself (lavapipe where
  there is no GPU): buffers in its memory pool, textures, frames, uploads
  through a staging ring, read-backs into numpy, statistics.
- :class:`VirtualTexture`: a 16K procedural terrain (or a tile pack) streamed
  within a memory budget and drawn headless from a camera.
- :mod:`forgeflow.pool`: the pool's allocator under a simulated hour of churn.
- :mod:`forgeflow.errors`: the exceptions, one per kind of error.
"""

from . import errors, pool, texture
from ._native import (
    BufferHandle,
    Runtime,
    TextureHandle,
    VirtualTexture,
    __version__,
    flight_camera,
)
from .errors import ForgeflowError

__all__ = [
    "BufferHandle",
    "ForgeflowError",
    "Runtime",
    "TextureHandle",
    "VirtualTexture",
    "__version__",
    "errors",
    "flight_camera",
    "pool",
    "texture",
]
