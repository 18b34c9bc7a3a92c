"""forgeflow.VirtualTexture: streamed tiles drawn from a camera."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

import forgeflow


def test_the_terrain_streams_and_renders(runtime):
    vt = forgeflow.VirtualTexture(runtime, size=4096, budget=32 << 20, resolution=(160, 90))
    for f in range(30):
        image = vt.render()
    assert image.shape == (90, 160, 4) and image.dtype == np.uint8
    assert image[..., :3].std() > 5, "a picture, not a flat colour"
    s = vt.stats()
    assert s["frames"] == 30 and s["resident"] > 1
    assert s["gpu_bytes"] <= 32 << 20 and s["failed_loads"] == 0
    assert 0 < s["hit_rate"] <= 1
    # Another camera, another picture.
    cam = forgeflow.flight_camera(0)
    a = vt.render(position=cam["position"], yaw=cam["yaw"], pitch=cam["pitch"])
    b = vt.render(position=(0.2, 0.05, 0.8), yaw=0.0, pitch=-0.5)
    assert (a != b).any()


def test_a_resolution_the_device_cannot_hold_is_an_error(runtime):
    for resolution in [(0, 90), (160, 0), (1 << 20, 90)]:
        with pytest.raises(forgeflow.errors.InvalidConfigError):
            forgeflow.VirtualTexture(runtime, size=1024, budget=16 << 20, resolution=resolution)


def test_a_missing_tile_pack_is_an_error(runtime, tmp_path):
    with pytest.raises(forgeflow.errors.VirtualTextureError):
        forgeflow.VirtualTexture(runtime, pack=tmp_path / "missing.ffvt")


def _forgeflow_tex():
    """The forgeflow-tex binary the workspace's build left (CI builds it with
    the README's test command)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    for profile in ("release", "debug"):
        exe = root / "target" / profile / "forgeflow-tex"
        if exe.is_file():
            return exe
    if os.environ.get("FORGEFLOW_REQUIRE_GPU") == "1":
        pytest.fail("no forgeflow-tex in target/: run `cargo build --bin forgeflow-tex` first")
    pytest.skip("no forgeflow-tex in target/ (cargo build --bin forgeflow-tex)")


def test_a_tile_pack_streams_like_its_terrain(runtime, tmp_path):
    """A pack made by `forgeflow-tex vt-build` from the terrain renders the
    picture the procedural terrain of the same seed renders."""
    pack = tmp_path / "terrain.vtpack"
    subprocess.run([str(_forgeflow_tex()), "vt-build", "--terrain", "1024", "--seed", "3",
                    "-o", str(pack)], check=True, capture_output=True)
    from_pack = forgeflow.VirtualTexture(runtime, pack=pack, budget=16 << 20, resolution=(96, 54))
    procedural = forgeflow.VirtualTexture(runtime, size=1024, seed=3, budget=16 << 20,
                                          resolution=(96, 54))
    cam = dict(position=(0.5, 0.05, 0.5), yaw=0.7, pitch=-0.4)
    for _ in range(12):
        a = from_pack.render(**cam)
        b = procedural.render(**cam)
    assert from_pack.stats()["size"] == (1024, 1024)
    assert from_pack.stats()["resident"] > 1
    assert (a == b).all(), "the pack holds the terrain's tiles"


def test_a_dropped_virtual_texture_gives_its_memory_back(runtime):
    runtime.wait_idle()
    base = runtime.gpu_bytes
    vt = forgeflow.VirtualTexture(runtime, size=4096, budget=32 << 20, resolution=(64, 36))
    vt.render()
    assert runtime.gpu_bytes >= base + (16 << 20)
    del vt
    for _ in range(4):
        runtime.frame()
    runtime.wait_idle()
    runtime.frame()
    assert runtime.gpu_bytes == base
