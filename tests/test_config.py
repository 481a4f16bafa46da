"""Typed configs: coercion, nesting, TOML, --set parsing and round trips."""

import json
from dataclasses import dataclass, field

import pytest

from omigen.config import RunConfig, from_dict, parse_sets, read_toml, resolve, to_dict
from omigen.errors import OmigenInputError


@dataclass
class Inner:
    lr: float = 1e-3
    layers: list[int] = field(default_factory=lambda: [64, 64])
    clip: float | None = 1.0


@dataclass
class Cfg(RunConfig):
    mode: str = "a"
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_defaults_then_layers_later_wins():
    cfg = resolve(Cfg, {"mode": "b", "inner": {"lr": "0.5"}}, parse_sets(["inner.lr=0.25", "flag=yes",
                                                                          "inner.layers=8,16", "steps=20"]))
    assert cfg.mode == "b" and cfg.flag is True and cfg.steps == 20
    assert cfg.inner.lr == 0.25 and cfg.inner.layers == [8, 16] and cfg.inner.clip == 1.0


def test_optional_none_and_ints():
    cfg = resolve(Cfg, parse_sets(["inner.clip=none", "seed=1e3", "data=x.tsv"]))
    assert cfg.inner.clip is None and cfg.seed == 1000 and cfg.data == "x.tsv"


@pytest.mark.parametrize("pairs, fragment", [
    (["nope=1"], "unknown option 'nope'"),
    (["inner.nope=1"], "unknown option 'inner.nope'"),
    (["steps=abc"], "option 'steps' expects int"),
    (["steps=1.5"], "option 'steps' expects int"),
    (["flag=maybe"], "option 'flag' expects bool"),
    (["mode"], "--set expects key=value"),
    (["=3"], "--set expects key=value"),
    (["seed=none"], "option 'seed' expects int, got 'none'"),
])
def test_bad_values_are_user_errors(pairs, fragment):
    with pytest.raises(OmigenInputError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        resolve(Cfg, parse_sets(pairs))


def test_round_trip_through_json():
    cfg = resolve(Cfg, parse_sets(["inner.layers=1,2,3", "mode=z"]))
    again = from_dict(Cfg, json.loads(json.dumps(to_dict(cfg))))
    assert again == cfg


def test_toml_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('mode = "t"\nsteps = 7\n[inner]\nlr = 0.1\n')
    cfg = resolve(Cfg, read_toml(p))
    assert (cfg.mode, cfg.steps, cfg.inner.lr) == ("t", 7, 0.1)
    bad = tmp_path / "bad.toml"
    bad.write_text("mode = \n")
    with pytest.raises(OmigenInputError, match="not valid TOML"):
        read_toml(bad)
    with pytest.raises(OmigenInputError, match="config file not found"):
        read_toml(tmp_path / "missing.toml")
