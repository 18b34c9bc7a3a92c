"""forgeflow.texture on the corpus's real files, checked against independent
references: Pillow's PNG decoder for the sources, the corpus's manifest."""

import os

import numpy as np
import pytest

import forgeflow
from forgeflow import errors, texture


def psnr(a, b):
    d = a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)
    return 10 * np.log10(255.0**2 / np.mean(d * d))


def test_info_matches_the_manifest(corpus):
    rows = [l.split("\t") for l in (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]]
    checked = 0
    for row in rows:
        name, size = row[0], row[4]
        if not name.endswith(".ktx2") or name.startswith("cts-invalid") or "x" not in size:
            continue
        i = texture.info(corpus / name)
        depth = f"x{i['depth']}" if i["depth"] > 1 else ""
        assert f"{i['width']}x{i['height']}{depth}" == size, name
        assert i["container"] == "KTX2"
        assert len(i["per_level"]) == i["levels"]
        checked += 1
    assert checked >= 20


def test_validate_finds_the_khronos_validators_errors(corpus):
    assert texture.validate(corpus / "t2d" / "BC7.ktx2") == {"valid": True, "findings": []}
    invalid = sorted((corpus / "cts-invalid").glob("*.ktx2"))
    assert invalid
    for path in invalid:
        r = texture.validate(path)
        assert not r["valid"], path
        assert any(f["severity"] in ("error", "fatal") for f in r["findings"]), path


def test_decode_bc7_is_close_to_its_source(corpus):
    try:
        import PIL.Image as pil
    except ImportError:
        if os.environ.get("FORGEFLOW_REQUIRE_REFERENCES") == "1":
            pytest.fail("FORGEFLOW_REQUIRE_REFERENCES=1 but no Pillow")
        pytest.skip("no Pillow (python3 -m pip install pillow)")
    source = np.asarray(pil.open(corpus / "t2d" / "ferris_512.png").convert("RGBA"))
    decoded = texture.decode(corpus / "t2d" / "BC7.ktx2")
    assert decoded.shape == (512, 512, 4) and decoded.dtype == np.uint8
    opaque = source[..., 3] == 255
    assert psnr(decoded[opaque], source[opaque]) > 40
    # forgeflow's own PNG reader agrees with Pillow's.
    assert (texture.decode(corpus / "t2d" / "ferris_512.png") == source).all()


def test_decode_hdr_is_float16(corpus):
    hdr = texture.decode(corpus / "t2d" / "BC6H.ktx2")
    assert hdr.dtype == np.float16 and hdr.shape == (512, 512, 4)
    assert np.isfinite(hdr).all() and hdr[..., :3].max() > 0


def test_decode_levels_layers_and_faces(corpus):
    cube = corpus / "wgpu" / "bc7.ktx2"
    i = texture.info(cube)
    assert i["faces"] == 6 and i["levels"] > 1
    face2 = texture.decode(cube, level=1, face=2)
    assert face2.shape == (i["height"] // 2, i["width"] // 2, 4)
    assert not (face2 == texture.decode(cube, level=1, face=0)).all()
    with pytest.raises(errors.NoSuchImageError):
        texture.decode(cube, level=i["levels"])
    with pytest.raises(IndexError):
        texture.decode(cube, face=6)


def test_transcode_basis_universal(corpus):
    etc1s = corpus / "bevy-pr18411" / "ktx2-etc1s-srgb.ktx2"
    i = texture.info(etc1s)
    blocks = texture.transcode(etc1s, "bc7")
    assert blocks.shape == ((i["height"] + 3) // 4, (i["width"] + 3) // 4, 16)
    rgba = texture.transcode(etc1s, "rgba8")
    assert rgba.shape == (i["height"], i["width"], 4)
    assert (rgba == texture.decode(etc1s)).all()
    assert "bc7" in texture.transcode_targets()
    with pytest.raises(errors.UnsupportedFormatError):
        texture.transcode(etc1s, "no-such-target")
    with pytest.raises(errors.UnsupportedFormatError):
        texture.transcode(corpus / "t2d" / "BC7.ktx2", "bc7")


def test_bad_files_raise_typed_errors(tmp_path):
    with pytest.raises(OSError) as e:
        texture.info(tmp_path / "missing.ktx2")
    assert isinstance(e.value, errors.TextureFileError)
    corrupt = tmp_path / "corrupt.ktx2"
    corrupt.write_bytes(b"\xabKTX 20\xbb\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ValueError) as e:
        texture.decode(corrupt)
    assert isinstance(e.value, errors.InvalidTextureError)
    assert isinstance(e.value, forgeflow.ForgeflowError)
    r = texture.validate(corrupt)
    assert not r["valid"] and r["findings"]
    unknown = tmp_path / "unknown.bin"
    unknown.write_bytes(b"not a texture")
    with pytest.raises(errors.TextureError):
        texture.info(unknown)
