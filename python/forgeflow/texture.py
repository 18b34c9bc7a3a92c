"""Texture files without a GPU: KTX2 (Basis Universal included), KTX 1, DDS
and PNG.

- :func:`info`: what a file holds.
- :func:`validate`: Khronos ``ktx validate``'s rules with its issue IDs.
- :func:`decode`: one image to a numpy array (RGBA8 or float16).
- :func:`transcode`: a Basis Universal image to a GPU format's blocks.
"""

from ._native import decode_file as decode
from ._native import info, transcode, transcode_targets, validate

__all__ = ["decode", "info", "transcode", "transcode_targets", "validate"]
