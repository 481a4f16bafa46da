"""Atomic writes keep the old file when writing fails."""

import pytest

from omigen.io import atomic_path, sha256_file, write_json


def test_failed_write_leaves_old_content(tmp_path):
    p = tmp_path / "out.json"
    write_json(p, {"a": 1, "nan": float("nan")})
    assert p.read_text().strip().startswith("{") and '"nan": null' in p.read_text()
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert '"a": 1' in p.read_text()
    assert [f.name for f in tmp_path.iterdir()] == ["out.json"]
    assert len(sha256_file(p)) == 64
