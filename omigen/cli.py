"""The ``omigen`` command: run, list, plugins, sample, evaluate.

Importing this module is cheap (argparse and the host's registry): torch and the plugins'
heavy libraries load only when a command needs them. User errors exit with status 2 and
one line on standard error; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from omigen import __version__
from omigen.errors import OmigenInputError

EPILOG = "Run 'omigen list' to see pipelines, metrics and other components from the loaded plugins."


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omigen", description="Realistic synthetic omics data with deep generative "
                                "models.", epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"omigen {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="train, sample, evaluate and report with a plugin's pipeline")
    r.add_argument("pipeline", help="pipeline name, e.g. expression (see 'omigen list')")
    r.add_argument("--data", help="input data file (default: the plugin's bundled data)")
    r.add_argument("--config", help="TOML file of options")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="set an option, e.g. --set train.lr=3e-4 (repeatable)")
    r.add_argument("--out", help="run folder (default: runs/<pipeline>-<time>)")
    r.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    r.add_argument("--seed", type=int)
    r.add_argument("--steps", type=int, help="training steps")
    r.add_argument("--quick", action="store_true", help="a small smoke run")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")

    ls = sub.add_parser("list", help="list registered pipelines, datasets, models, samplers, metrics, baselines")
    ls.add_argument("--json", action="store_true")

    pl = sub.add_parser("plugins", help="show loaded and failed plugins")
    pl.add_argument("--json", action="store_true")

    s = sub.add_parser("sample", help="draw synthetic data from a finished run folder")
    s.add_argument("run_dir", help="a run folder written by 'omigen run'")
    s.add_argument("-n", "--n", type=int, default=100, help="how many samples (default 100)")
    s.add_argument("--label", help="draw only this class (default: classes in training proportions)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sampler", help="sampler name, e.g. ddim or ddpm")
    s.add_argument("--steps", type=int, help="sampling steps")
    s.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    s.add_argument("--out", required=True, help="output file; its suffix picks the format")

    e = sub.add_parser("evaluate", help="score a synthetic file against a real one with registered metrics")
    e.add_argument("real", help="held-out real data file")
    e.add_argument("synthetic", help="synthetic data file")
    e.add_argument("--train", help="the training data (for privacy and utility metrics)")
    e.add_argument("--metrics", help="comma-separated metric names (default: all for the modality)")
    e.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="loader option, e.g. --option labels=labels.tsv (repeatable)")
    e.add_argument("--no-baselines", action="store_true", help="skip the baseline generators")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", help="write the metrics as JSON here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``omigen`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = {"run": _cmd_run, "list": _cmd_list, "plugins": _cmd_plugins, "sample": _cmd_sample,
               "evaluate": _cmd_evaluate}[args.command]
    try:
        return handler(args) or 0
    except OmigenInputError as exc:
        if args.debug:
            raise
        print(f"omigen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omigen: interrupted", file=sys.stderr)
        return 130


def _console():
    from rich.console import Console

    return Console()


def _cmd_run(args) -> int:
    from omigen.config import parse_sets
    from omigen.run import run_pipeline

    overrides = {"data": args.data, "device": args.device, "seed": args.seed, "steps": args.steps}
    result, ctx = run_pipeline(args.pipeline, out_dir=args.out, config_file=args.config,
                               sets=parse_sets(args.sets), overrides=overrides, quick=args.quick,
                               resume=args.resume, progress=not args.no_progress)
    console = _console()
    for key, value in result.summary:
        console.print(f"[bold]{key}[/bold]: {value}")
    console.print(f"run folder: [bold]{ctx.out_dir}[/bold]  ({ctx.manifest()['wall_seconds']:.1f} s)")
    for what, path in result.files.items():
        console.print(f"  {what}: {path}")
    return 0


def _cmd_list(args) -> int:
    from omigen.plugins import get_host

    host = get_host()
    reg = host.registry
    kinds = ("pipelines", "datasets", "models", "samplers", "metrics", "baselines")
    data = {kind: [_describe(kind, name, spec, reg.owner[(kind, name)]) for name, spec in reg.all(kind).items()]
            for kind in kinds}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.table import Table

    console = _console()
    for kind in kinds:
        if not data[kind]:
            continue
        table = Table(title=kind, title_justify="left", show_edge=False)
        for col in ("name", "modality", "plugin", "description"):
            table.add_column(col)
        for row in data[kind]:
            table.add_row(row["name"], row["modality"], row["plugin"], row["description"])
        console.print(table)
    if host.failed:
        console.print(f"[yellow]{len(host.failed)} plugin(s) failed to load; see 'omigen plugins'[/yellow]")
    return 0


def _describe(kind: str, name: str, spec, plugin: str) -> dict:
    mods = getattr(spec, "modalities", None) or (getattr(spec, "modality", None) or "",)
    if kind == "samplers":
        mods = spec.model_kinds
    row = {"name": name, "modality": ",".join(mods), "plugin": plugin, "description": spec.description}
    if kind == "metrics":
        row["outputs"] = {k: v for k, v in spec.outputs.items()}
    return row


def _cmd_plugins(args) -> int:
    from omigen.plugins import get_host

    host = get_host()
    if args.json:
        print(json.dumps([p.as_dict() for p in host.plugins], indent=2))
        return 0
    from rich.table import Table

    table = Table(show_edge=False)
    for col in ("plugin", "version", "status", "hooks / error"):
        table.add_column(col)
    for p in host.plugins:
        hooks = ", ".join(h.replace("omigen_register_", "") for h in p.hooks)
        detail = hooks if p.status == "loaded" else f"[red]{p.error}[/red]"
        status = "[green]loaded[/green]" if p.status == "loaded" else "[red]failed[/red]"
        table.add_row(p.name, p.version or "-", status, detail)
    _console().print(table)
    return 0


def _writer_for(reg, path: Path, modality: str, plugin: str | None = None):
    # The pipeline's own plugin knows its data best: its writers come before other plugins' ones.
    specs = sorted(reg.formats_for(path, modality), key=lambda s: reg.owner[("datasets", s.name)] != plugin)
    for spec in specs:
        if spec.save is not None:
            return spec
    suffixes = sorted({s for spec in reg.all("datasets").values() if spec.modality == modality and spec.save
                       for s in spec.suffixes})
    raise OmigenInputError(f"cannot write {modality} data to {path.name}; use one of: {', '.join(suffixes) or 'none'}")


def _cmd_sample(args) -> int:
    from omigen.plugins import get_registry
    from omigen.run import read_run_config

    reg = get_registry()
    info = read_run_config(args.run_dir)
    spec = reg.get("pipelines", info["pipeline"])
    out = Path(args.out)
    writer = _writer_for(reg, out, spec.modality, reg.owner[("pipelines", spec.name)])
    if args.n <= 0:
        raise OmigenInputError(f"-n must be positive, got {args.n}")
    options = {k: v for k, v in (("sampler", args.sampler), ("steps", args.steps), ("guidance", args.guidance))
               if v is not None}
    data = spec.sample(Path(args.run_dir), n=args.n, label=args.label, seed=args.seed, **options)
    data.validate()
    writer.save(data, out)
    print(f"wrote {len(data)} samples to {out}")
    return 0


def _load_any(reg, path: str, options: dict, modality: str | None = None):
    from omigen.io import require_file

    p = require_file(path)
    specs = reg.formats_for(p, modality)
    if not specs:
        raise OmigenInputError(f"no registered reader for {p.name}" + (f" ({modality})" if modality else ""))
    return specs[0].load(str(p), **options)


def _cmd_evaluate(args) -> int:
    from omigen.config import parse_sets
    from omigen.evaluate import evaluate
    from omigen.io import write_json
    from omigen.plugins import get_registry
    from omigen.report import print_table

    reg = get_registry()
    options = parse_sets(args.options)
    real = _load_any(reg, args.real, options).validate()
    synthetic = _load_any(reg, args.synthetic, options, real.modality).validate()
    train = _load_any(reg, args.train, options, real.modality).validate() if args.train else None
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    for name in metrics or []:
        reg.get("metrics", name)
    ev = evaluate(real, synthetic, train, registry=reg, seed=args.seed, metrics=metrics,
                  baselines=not args.no_baselines and train is not None, reference=train is not None)
    print_table(ev, _console())
    if args.out:
        write_json(args.out, ev.as_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
