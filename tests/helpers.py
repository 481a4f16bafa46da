"""Test helpers: throw-away plugins with real entry-point metadata, and the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_plugin(root: Path, name: str, source: str, dist: str | None = None, version: str = "0.0.1") -> Path:
    """Make ``root`` hold module ``<name>_plugin`` announced under the ``omigen`` entry-point group."""
    dist = dist or f"fake-{name}"
    module = f"{name.replace('-', '_')}_plugin"
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[omigen]\n{name} = {module}\n")
    return root


def run_cli(*args: str, extra_path: Path | None = None, cwd: Path | None = None, env: dict | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m omigen`` in a subprocess, optionally with fake plugins on its path."""
    full_env = dict(os.environ)
    if extra_path is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), full_env.get("PYTHONPATH")]))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "omigen", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)
