"""A renderer's buffer churn on forgeflow's memory pool: about
``--allocations`` live allocations of random sizes, a few percent freed and
replaced every frame, each new allocation tagged with its number; the
runtime defragments between frames (moving allocations on the GPU). At the
end every live allocation's tag is read back from wherever it moved, and the
pool's statistics are printed; then a simulated hour of churn replayed
through the pool's allocator core (as `forgeflow-stress pool` does).

    python memory_pool_demo.py --allocations 1000 --runtime 60s
"""

import argparse
import sys
import time

import numpy as np

import forgeflow
from _common import duration


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--allocations", type=int, default=1000, help="live allocations")
    p.add_argument("--runtime", type=duration, default=60.0, help="how long to churn")
    p.add_argument("--simulate-hours", type=float, default=1.0,
                   help="hours of churn replayed through the allocator core (0: none)")
    a = p.parse_args()
    rt = forgeflow.Runtime(pool_block_size=256 << 20)
    rng = np.random.default_rng(7)
    live = {}  # tag -> (handle, size)
    tag = 0

    def alloc() -> None:
        nonlocal tag
        size = int(rng.integers(64, 16384)) * 16
        h = rt.alloc_buffer(size, 256)
        rt.write_buffer(h, np.full(size // 4, tag, dtype=np.uint32))
        live[tag] = (h, size)
        tag += 1

    for i in range(a.allocations):
        alloc()
        if i % 100 == 99:  # the writes of a frame stay under its queue's limit
            rt.frame()
    frames = 0
    end = time.perf_counter() + a.runtime
    moves = 0
    while time.perf_counter() < end:
        for t in rng.choice(list(live), size=max(1, len(live) // 20), replace=False):
            rt.free(live.pop(int(t))[0])
        while len(live) < a.allocations:
            alloc()
        moves += rt.frame()["defrag_moves"]
        frames += 1
    rt.frame()
    rt.wait_idle(60.0)
    bad = sum(
        1 for t, (h, size) in live.items()
        if not (rt.read_buffer(h).view(np.uint32) == t).all()
    )
    s = rt.stats()["pool"]
    print(f"adapter: {rt.adapter['name']}")
    print(f"churn: {frames} frames, {s['allocations']} allocations, {s['frees']} frees, "
          f"{len(live)} live")
    print(f"pool: {s['pool_bytes'] / 2**20:.0f} MiB in {s['blocks']} block(s), "
          f"{s['bytes_in_use'] / 2**20:.1f} MiB in use, utilization {100 * s['utilization']:.1f}%, "
          f"fragmentation {100 * s['fragmentation']:.2f}%, {s['moves']} moves "
          f"({s['bytes_moved'] / 2**20:.1f} MiB), {s['blocks_released']} blocks released")
    print(f"integrity: {len(live) - bad} of {len(live)} allocations hold their tag")
    if a.simulate_hours > 0:
        h = forgeflow.pool.simulate_churn(a.simulate_hours)
        print(f"simulated {a.simulate_hours} h ({h['frames']} frames, {h['allocations']} "
              f"allocations): fragmentation {100 * h['fragmentation_end']:.2f}% at the end, "
              f"p99 {100 * h['fragmentation_p99']:.2f}%, max {100 * h['fragmentation_max']:.2f}% "
              f"over {h['samples']} samples, {h['moves']} moves, {h['failures']} failures")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
