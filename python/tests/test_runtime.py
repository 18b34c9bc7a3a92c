"""forgeflow.Runtime: bytes written come back from the GPU, textures arrive
as the file holds them, errors are typed, the GIL is released."""

import threading
import time

import numpy as np
import pytest

import forgeflow
from forgeflow import errors, texture


def test_buffer_writes_reach_the_gpu(runtime):
    h = runtime.alloc_buffer(1 << 20)
    data = np.random.default_rng(1).integers(0, 2**32, 1 << 18, dtype=np.uint32)
    runtime.write_buffer(h, data)
    runtime.write_buffer(h, b"\x01\x02\x03\x04", offset=8)
    report = runtime.frame()
    assert report["buffer_writes"] == 2 and report["failure"] is None
    runtime.wait_idle()
    back = runtime.read_buffer(h)
    expected = data.view(np.uint8).copy()
    expected[8:12] = [1, 2, 3, 4]
    assert (back == expected).all()
    assert (runtime.read_buffer(h, offset=8, size=4) == [1, 2, 3, 4]).all()
    runtime.free(h)


@pytest.mark.parametrize("piece", [4096, 65536, 1 << 20])
def test_uploads_through_the_staging_ring_arrive(runtime, piece):
    h = runtime.alloc_buffer(3 << 20)
    data = np.random.default_rng(piece).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    r = runtime.upload(h, data, piece_size=piece)
    assert r["bytes"] == len(data) and r["pieces"] == -(-len(data) // piece)
    runtime.wait_idle()
    assert bytes(runtime.read_buffer(h)) == data
    assert runtime.stats()["transfers"]["bytes_total"] >= len(data)
    runtime.free(h)


def test_stale_handles_budgets_and_bounds_are_errors():
    rt = forgeflow.Runtime(pool_block_size=1 << 20, pool_budget=2 << 20)
    h = rt.alloc_buffer(4096)
    rt.free(h)
    with pytest.raises(errors.StaleHandleError):
        rt.write_buffer(h, b"\x00" * 4)
    with pytest.raises(ValueError):
        rt.free(h)
    live = rt.alloc_buffer(4096)
    with pytest.raises(errors.WriteError):
        rt.write_buffer(live, b"\x00" * 8, offset=4092)
    with pytest.raises(errors.WriteError):
        rt.upload(live, b"\x00" * 6)
    with pytest.raises(errors.WrongTypeError):
        rt.free("not a handle")
    held = []
    with pytest.raises(errors.BudgetError):
        for _ in range(8):
            held.append(rt.alloc_buffer(768 << 10))
    assert len(held) == 2


def test_textures_arrive_as_the_file_holds_them(runtime, corpus):
    rgba = corpus / "wgpu" / "rgba8.ktx2"
    t = runtime.load_texture(rgba)
    runtime.wait_texture(t)
    assert runtime.texture_status(t) == "ready"
    info = runtime.texture_info(t)
    assert (info["width"], info["depth_or_layers"]) == (texture.info(rgba)["width"], 6)
    for level, face in [(0, 0), (2, 3)]:
        on_gpu = runtime.read_texture(t, level=level, layer=face)
        assert (on_gpu == texture.decode(rgba, level=level, face=face)).all()
    bc7 = runtime.load_texture((corpus / "t2d" / "BC7.ktx2").read_bytes())
    runtime.wait_texture(bc7)
    i = runtime.texture_info(bc7)
    assert i["compressed"] and i["gpu_bytes"] == 512 * 512
    assert runtime.read_texture(bc7).shape == (128, 128, 16)
    runtime.free(t)
    runtime.free(bc7)
    with pytest.raises(errors.StaleHandleError):
        runtime.texture_status(t)


def test_a_corrupt_texture_fails_with_its_error(runtime):
    t = runtime.load_texture(b"\xabKTX 20\xbb\r\n\x1a\nthis is no header")
    with pytest.raises(errors.InvalidTextureError):
        runtime.wait_texture(t)
    assert runtime.texture_status(t) == "failed"
    missing = runtime.load_texture("/nonexistent/file.ktx2")
    with pytest.raises(OSError):
        runtime.wait_texture(missing)


def test_stats_follow_the_pool(runtime):
    before = runtime.stats()["pool"]["bytes_in_use"]
    hs = [runtime.alloc_buffer(64 << 10) for _ in range(4)]
    s = runtime.stats()
    assert s["pool"]["bytes_in_use"] == before + 4 * (64 << 10)
    assert 0 <= s["pool"]["fragmentation"] <= 1 and 0 < s["pool"]["utilization"] <= 1
    assert s["staging"]["bytes_in_use"] > 0 and s["runtime"]["frames"] >= 1
    for h in hs:
        runtime.free(h)


def test_the_gil_is_released_while_forgeflow_works(runtime):
    """The main thread runs Python inside one upload call of another thread:
    with the GIL held for the call, no tick could fall inside it."""
    h = runtime.alloc_buffer(64 << 20)
    data = bytes(64 << 20)
    span = []
    ticks = []
    done = threading.Event()

    def upload():
        start = time.perf_counter()
        runtime.upload(h, data)
        runtime.wait_idle()
        span.extend([start, time.perf_counter()])
        done.set()

    t = threading.Thread(target=upload)
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
    t.join()
    inside = [x for x in ticks if span[0] < x < span[1]]
    assert len(inside) > 100, f"{len(inside)} ticks in a {span[1] - span[0]:.3f} s call"
    runtime.free(h)


def test_a_handle_of_another_runtime_is_refused(runtime):
    other = forgeflow.Runtime()
    theirs = other.alloc_buffer(4096)
    ours = runtime.alloc_buffer(4096)
    for call in (lambda: runtime.write_buffer(theirs, b"\0" * 4),
                 lambda: runtime.read_buffer(theirs), lambda: runtime.free(theirs)):
        with pytest.raises(errors.WrongTypeError):
            call()
    assert (runtime.read_buffer(ours, size=0)).size == 0
    runtime.free(ours)
    other.free(theirs)
