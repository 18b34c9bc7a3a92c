"""A block-compressed texture through forgeflow's runtime: its GPU memory
against the same texture in RGBA8, and its quality (PSNR) against the image
it was compressed from.

    python compressed_texture_demo.py --format bc7 --input FILE.ktx2 [--source FILE]

Without ``--source``, the corpus's known pairs are used (``wgpu/bc7.ktx2``
and ``wgpu/etc2.ktx2`` come from ``wgpu/rgba8.ktx2``; ``t2d/BC7.ktx2`` from
``t2d/ferris_512.png``).
"""

import argparse
import os
import sys

import numpy as np

import forgeflow
from _common import psnr

PAIRS = {"bc7.ktx2": "rgba8.ktx2", "etc2.ktx2": "rgba8.ktx2", "BC7.ktx2": "ferris_512.png"}


def rgba8_bytes(info: dict) -> int:
    """What the texture would take as RGBA8: every level, every layer."""
    w, h, layers = info["width"], info["height"], info["depth_or_layers"]
    return sum(max(w >> l, 1) * max(h >> l, 1) * 4 * layers for l in range(info["levels"]))


def measure(path: str, source: str, fmt: str) -> dict:
    rt = forgeflow.Runtime()
    t = rt.load_texture(path)
    rt.wait_texture(t)
    info = rt.texture_info(t)
    if fmt.lower() not in info["format"].lower():
        raise SystemExit(f"{path} is {info['format']} on {rt.adapter['name']}, not {fmt}")
    compressed = forgeflow.texture.decode(path)
    original = forgeflow.texture.decode(source)
    # Where the source has alpha, compare the opaque pixels only.
    opaque = original[..., 3] == 255
    quality = psnr(compressed[opaque], original[opaque])
    saved = 1 - info["gpu_bytes"] / rgba8_bytes(info)
    return {"adapter": rt.adapter["name"], "format": info["format"], "gpu_bytes": info["gpu_bytes"],
            "rgba8_bytes": rgba8_bytes(info), "saved": saved, "psnr_db": quality}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--format", default="bc7", help="the GPU format expected (bc7, etc2, astc...)")
    p.add_argument("--input", required=True, help="the compressed KTX2/DDS file")
    p.add_argument("--source", help="the image it was compressed from")
    a = p.parse_args()
    source = a.source or os.path.join(os.path.dirname(a.input), PAIRS.get(os.path.basename(a.input), ""))
    if not os.path.isfile(source):
        raise SystemExit(f"no source image for {a.input}: pass --source")
    m = measure(a.input, source, a.format)
    print(f"adapter: {m['adapter']}")
    print(f"{a.input}: {m['format']} on the GPU, {m['gpu_bytes']:,} bytes against "
          f"{m['rgba8_bytes']:,} as RGBA8: {100 * m['saved']:.1f}% less")
    print(f"quality: {m['psnr_db']:.2f} dB PSNR against {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
