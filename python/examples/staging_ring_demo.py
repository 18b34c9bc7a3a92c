"""Transfers from Python memory to GPU buffers through forgeflow's staging
ring: each transfer is reserved in the ring in pieces, the pieces filled by
the runtime's worker threads, the copies submitted. Prints the throughput,
the render thread's CPU time per 100 MB (what `forgeflow-stress upload`
reports as ``render_thread_ms_per_100mb``) and the ring's statistics, and
checks the last transfer's bytes on the GPU.

    python staging_ring_demo.py --transfers 100 --size 100MB [--piece 64KiB]
"""

import argparse
import statistics
import sys
import time

import numpy as np

import forgeflow
from _common import size


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--transfers", type=int, default=100, help="transfers to make")
    p.add_argument("--size", type=size, default=size("100MB"), help="bytes per transfer")
    p.add_argument("--piece", type=size, default=size("64KiB"), help="piece size")
    a = p.parse_args()
    n = a.size - a.size % 4
    rt = forgeflow.Runtime(pool_block_size=max(n, 64 << 20))
    print(f"adapter: {rt.adapter['name']} ({rt.adapter['backend']})")
    dst = rt.alloc_buffer(n)
    rng = np.random.default_rng(1)
    # Two sources, alternated, made before timing (as forgeflow-stress does).
    sources = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for _ in range(2)]
    render_ms = []
    start = time.perf_counter()
    for i in range(a.transfers):
        r = rt.upload(dst, sources[i % 2], piece_size=a.piece)
        render_ms.append(r["render_thread_ms"] * 100e6 / n)
    rt.wait_idle(60.0)
    wall = time.perf_counter() - start
    ok = bytes(rt.read_buffer(dst)) == sources[(a.transfers - 1) % 2]
    ring = rt.stats()["transfers"]
    print(f"transfers: {a.transfers} x {n / 1e6:.1f} MB in {a.piece}-byte pieces "
          f"({r['pieces']} pieces each)")
    print(f"throughput: {a.transfers * n / 1e6 / wall:,.0f} MB/s (wall clock, GPU included)")
    print(f"render thread: {statistics.median(render_ms):.3f} ms per 100 MB (median), "
          f"{max(render_ms):.3f} max")
    print(f"staging ring: {ring['bytes_in_use'] / 2**20:.0f} MiB, {ring['wraps']} wraps, "
          f"{ring['waits']} waits ({ring['wait_ms_total']:.1f} ms), "
          f"{ring['dedicated_buffers_created']} dedicated buffers")
    print(f"integrity: last transfer {'matches' if ok else 'DIFFERS'} on the GPU")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
