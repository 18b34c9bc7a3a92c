"""Fixtures: the shared corpus of real texture files, and a runtime.

Without a GPU driver the runtime's tests are skipped, and without the corpus
the file tests, unless ``FORGEFLOW_REQUIRE_GPU=1`` / ``FORGEFLOW_REQUIRE_CORPUS=1``
(CI sets both): then they fail.
"""

import os
import pathlib

import pytest

import forgeflow

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _required(flag: str) -> bool:
    return os.environ.get(flag) == "1"


@pytest.fixture(scope="session")
def corpus() -> pathlib.Path:
    """The corpus's ``ktx2/`` folder (``FORGEFLOW_CORPUS``, else ``../shared/corpus``)."""
    base = pathlib.Path(os.environ.get("FORGEFLOW_CORPUS", ROOT.parent / "shared" / "corpus"))
    path = base / "ktx2"
    if not (path / "MANIFEST.tsv").is_file():
        if _required("FORGEFLOW_REQUIRE_CORPUS"):
            pytest.fail(f"FORGEFLOW_REQUIRE_CORPUS=1 but no corpus at {path}")
        pytest.skip(f"no texture corpus at {path} (set FORGEFLOW_CORPUS)")
    return path


@pytest.fixture(scope="session")
def runtime() -> forgeflow.Runtime:
    """One runtime for the session (opening a device takes a while)."""
    try:
        return forgeflow.Runtime()
    except forgeflow.errors.NoGpuError as e:
        if _required("FORGEFLOW_REQUIRE_GPU"):
            pytest.fail(f"FORGEFLOW_REQUIRE_GPU=1 but no device: {e}")
        pytest.skip(f"no GPU device: {e}")
