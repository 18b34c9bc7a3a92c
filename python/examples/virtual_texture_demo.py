"""A procedural terrain of 16384x16384 texels streamed as a virtual texture
within a GPU memory budget, flown over headless: each frame the runtime
faults in the tiles the last frames asked for, evicts the oldest, and the
scene samples them. Writes PNG frames and prints the streaming figures.

    python virtual_texture_demo.py --terrain 16384x16384 --budget 256MB [--frames 300] [--out DIR]
"""

import argparse
import os
import sys
import tempfile

import forgeflow
from _common import size, write_png


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--terrain", default="16384x16384", help="WIDTHxHEIGHT (square)")
    p.add_argument("--budget", type=size, default=size("256MB"), help="resident tiles' GPU memory")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--resolution", default="640x360")
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "forgeflow-vt"))
    p.add_argument("--every", type=int, default=60, help="write every Nth frame")
    a = p.parse_args()
    w, h = (int(v) for v in a.terrain.lower().split("x"))
    if w != h:
        raise SystemExit("the procedural terrain is square")
    res = tuple(int(v) for v in a.resolution.lower().split("x"))
    os.makedirs(a.out, exist_ok=True)
    rt = forgeflow.Runtime()
    vt = forgeflow.VirtualTexture(rt, size=w, budget=a.budget, resolution=res)
    print(f"adapter: {rt.adapter['name']}")
    for f in range(a.frames):
        image = vt.render(**forgeflow.flight_camera(f))
        if f % a.every == a.every - 1 or f + 1 == a.frames:
            path = os.path.join(a.out, f"terrain-{f:04}.png")
            write_png(path, image)
            s = vt.stats()
            print(f"{path}: {s['resident']} tiles resident, {100 * s['hit_rate']:.1f}% hits")
    s = vt.stats()
    print(f"terrain {w}x{h}: {s['gpu_bytes'] / 1e6:.1f} MB resident of a "
          f"{a.budget / 1e6:.0f} MB budget ({s['resident']} of {s['slots']} slots), "
          f"hit rate {100 * s['hit_rate']:.1f}%, fault latency p50 "
          f"{s['fault_latency_frames_p50']} / p95 {s['fault_latency_frames_p95']} frames, "
          f"mip bias {s['mip_bias']:.2f}, {s['evicted']} evicted, {s['failed_loads']} failed loads")
    return 0 if s["gpu_bytes"] <= a.budget and s["failed_loads"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
