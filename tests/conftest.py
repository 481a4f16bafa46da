"""Shared fixtures."""

import atexit
import importlib
import os
import shutil
import tempfile

# Test models are tiny: one thread avoids thread start-up costs and contention on small machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Simulated default data is cached; tests keep theirs out of the user's cache folder.
if "OMIGEN_CACHE" not in os.environ:
    os.environ["OMIGEN_CACHE"] = tempfile.mkdtemp(prefix="omigen-test-cache-")
    atexit.register(shutil.rmtree, os.environ["OMIGEN_CACHE"], ignore_errors=True)

import pytest


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path where tests drop fake plugin distributions."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    yield root
    importlib.invalidate_caches()
