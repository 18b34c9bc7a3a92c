"""Types of forgeflow's extension module (re-exported by ``forgeflow``)."""

from os import PathLike
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

PathArg = Union[str, "PathLike[str]"]
Data = Union[bytes, bytearray, memoryview, npt.NDArray[Any]]

def info(path: PathArg) -> Dict[str, Any]:
    """Container, ``vk_format``, ``format``, ``compressed``, ``width``,
    ``height``, ``depth``, ``layers``, ``faces``, ``levels``,
    ``supercompression`` and ``per_level`` (width, height, bytes) of a file.
    Raises :class:`~forgeflow.errors.TextureFileError` (unreadable) or
    :class:`~forgeflow.errors.InvalidTextureError` (corrupt)."""

def validate(path: PathArg, gltf_basisu: bool = False) -> Dict[str, Any]:
    """``{"valid": bool, "findings": [{"id", "severity", "message"}]}``: for
    KTX2 the rules of ``ktx validate`` with its issue IDs (and glTF's
    KHR_texture_basisu rules with ``gltf_basisu``); never raises for an
    invalid file."""

def decode_file(
    path: PathArg, level: int = 0, layer: int = 0, face: int = 0
) -> npt.NDArray[Any]:
    """One image as (height, width, 4): ``uint8`` RGBA (``int8`` for signed
    formats) or ``float16`` for HDR formats (``float32`` for 32-bit float
    files). Exposed as ``forgeflow.texture.decode``."""

def transcode(
    path: PathArg, target: str, level: int = 0, layer: int = 0, face: int = 0
) -> npt.NDArray[np.uint8]:
    """One image of a Basis Universal file transcoded to ``target`` (see
    :func:`transcode_targets`): blocks as (block rows, block columns, bytes
    per block), texel targets as (height, width, channels)."""

def transcode_targets() -> List[str]:
    """The targets :func:`transcode` takes."""

def simulate_churn(hours: float = 1.0, seed: int = 1, defrag: bool = True) -> Dict[str, Any]:
    """Replays ``hours`` of buffer churn (216,000 frames an hour) through the
    pool's allocator core with a defragmentation plan per frame; returns
    ``fragmentation_end``, ``fragmentation_max``, ``fragmentation_p99``, ``fragmentation_mean``,
    ``samples``, ``frames``, ``allocations``, ``frees``, ``failures``,
    ``moves``, ``bytes_moved``, ``utilization_end``."""

def flight_camera(frame: int) -> Dict[str, Any]:
    """The examples' flight path at ``frame``: ``position`` (x, height, z),
    ``yaw``, ``pitch``, as :meth:`VirtualTexture.render` takes them."""

class BufferHandle:
    """An allocation of a runtime's memory pool (hashable, comparable)."""

class TextureHandle:
    """A texture loaded through a runtime (hashable, comparable)."""

class Runtime:
    """forgeflow's runtime on a device it opens itself (the best adapter, or
    Mesa's lavapipe where there is no GPU). Raises
    :class:`~forgeflow.errors.NoGpuError` when no device can be opened."""

    def __init__(
        self,
        frames_in_flight: int = 3,
        threads: Optional[int] = None,
        staging_buffer_size: Optional[int] = None,
        pool_block_size: Optional[int] = None,
        pool_budget: Optional[int] = None,
        texture_budget: Optional[int] = None,
        texture_upload_per_frame: Optional[int] = None,
    ) -> None: ...
    @property
    def adapter(self) -> Dict[str, str]:
        """``name``, ``backend``, ``device_type``, ``driver``."""
    @property
    def gpu_bytes(self) -> int:
        """GPU memory the runtime holds (pool blocks, textures, staging)."""
    def load_texture(self, source: Union[PathArg, bytes]) -> TextureHandle:
        """Starts loading a file (a path, or its bytes)."""
    def texture_status(self, handle: TextureHandle) -> str:
        """``"loading"``, ``"uploading"``, ``"ready"`` or ``"failed"``."""
    def wait_texture(self, handle: TextureHandle, timeout: float = 30.0) -> None:
        """Runs frames until the texture is ready; raises its load error, or
        :class:`~forgeflow.errors.LoadTimeoutError`."""
    def texture_info(self, handle: TextureHandle) -> Dict[str, Any]:
        """``format``, ``compressed``, ``width``, ``height``,
        ``depth_or_layers``, ``levels``, ``first_level``, ``gpu_bytes``."""
    def read_texture(
        self, handle: TextureHandle, level: int = 0, layer: int = 0
    ) -> npt.NDArray[Any]:
        """A ready texture's image read back: texels (height, width,
        channels) or blocks (block rows, block columns, bytes per block)."""
    def alloc_buffer(self, size: int, align: int = 256) -> BufferHandle:
        """Allocates from the memory pool (raises
        :class:`~forgeflow.errors.BudgetError` past its budget)."""
    def write_buffer(self, handle: BufferHandle, data: Data, offset: int = 0) -> None:
        """Queues a write for the next frame (multiples of 4 bytes)."""
    def upload(
        self, handle: BufferHandle, data: Data, offset: int = 0, piece_size: int = 65536
    ) -> Dict[str, Any]:
        """Uploads now through a staging ring in ``piece_size`` pieces filled
        by the worker threads; returns ``bytes``, ``pieces``,
        ``render_thread_ms``, ``fill_ms``, ``fence_wait_ms``."""
    def read_buffer(
        self, handle: BufferHandle, offset: int = 0, size: Optional[int] = None
    ) -> npt.NDArray[np.uint8]:
        """An allocation's bytes read back from the GPU."""
    def free(self, handle: Union[BufferHandle, TextureHandle]) -> None:
        """Frees a buffer or a texture (reused after its frames' fences)."""
    def frame(self) -> Dict[str, Any]:
        """One frame (begin, end, submit); its report: ``frame``, ``jobs``,
        ``textures_read``, ``textures_uploaded``, ``textures_failed``,
        ``buffer_writes``, ``staging_bytes``, ``defrag_moves``,
        ``abandoned_frames``, ``failure`` (a message or None), ``cpu_ms``."""
    def wait_idle(self, timeout: float = 10.0) -> None:
        """Waits for the GPU to finish the submitted frames."""
    def stats(self) -> Dict[str, Dict[str, Any]]:
        """``runtime``, ``staging`` (the runtime's ring), ``transfers`` (the
        ring of :meth:`upload`) and ``pool`` statistics."""

class VirtualTexture:
    """A virtual texture streamed by ``runtime`` within ``budget`` bytes: the
    procedural terrain of ``size`` texels a side, or the tile pack at
    ``pack``; drawn at ``resolution`` by :meth:`render`."""

    def __init__(
        self,
        runtime: Runtime,
        size: int = 16384,
        budget: int = 256 << 20,
        resolution: Tuple[int, int] = (640, 360),
        pack: Optional[PathArg] = None,
        tile_size: int = 128,
        seed: int = 1,
    ) -> None: ...
    def render(
        self,
        position: Optional[Tuple[float, float, float]] = None,
        yaw: Optional[float] = None,
        pitch: Optional[float] = None,
    ) -> npt.NDArray[np.uint8]:
        """One frame seen from the camera (defaults: the flight path); the
        picture as (height, width, 4) RGBA."""
    def stats(self) -> Dict[str, Any]:
        """``resident``, ``slots``, ``hit_rate``, ``fault_latency_frames_p50``,
        ``fault_latency_frames_p95``, ``mip_bias``, ``gpu_bytes``,
        ``budget_bytes``, ``faults``, ``tiles_uploaded``, ``evicted``,
        ``failed_loads``, ``failed_frames``, ``last_failure``, ``frames``,
        ``size``."""
