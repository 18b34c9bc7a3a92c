"""forgeflow.VirtualTexture: streamed tiles drawn from a camera."""

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


def test_a_missing_tile_pack_is_an_error(runtime, tmp_path):
    with pytest.raises(forgeflow.errors.VirtualTextureError):
        forgeflow.VirtualTexture(runtime, pack=tmp_path / "missing.ffvt")
