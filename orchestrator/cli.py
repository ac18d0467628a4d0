"""The `nasorch` command line. Every user error is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from orchestrator.errors import UserError

# Sub-commands that live in their own modules: each has add_arguments(parser) and execute(args).
EXTERNAL = {
    "bench": ("orchestrator.bench", "benchmark searchers on a tabular NAS benchmark"),
}


def _cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.runner import print_summary, run

    result = run(args.config, overrides=args.set, address=args.address, progress=not args.quiet)
    print_summary(result, top=args.top)
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from orchestrator.config import default_tracking_uri

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"{uri} is a tracking server already: open it in a browser.")
        return 0
    url = f"http://{args.host}:{args.port}"
    print(f"MLflow UI on {url} for {uri} (Ctrl+C to stop)", flush=True)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", args.host, "--port", str(args.port)]
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nasorch", description="Neural-architecture and hyperparameter search on Ray Tune."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a search from a YAML config")
    p.add_argument("config", help="experiment YAML file")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set num_samples=20 --set searcher.name=tpe",
    )  # fmt: skip
    p.add_argument("--address", default=None, help="Ray cluster address (auto, ray://host:10001)")
    p.add_argument("--top", type=int, default=10, help="rows in the final leaderboard")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("ui", help="open the MLflow UI on the local store (bound to 127.0.0.1)")
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="default: MLFLOW_TRACKING_URI or ./nasorch_results/mlflow.db",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=_cmd_ui)

    for name, (module, help_text) in EXTERNAL.items():
        p = sub.add_parser(name, help=help_text)
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        mod.add_arguments(p)
        p.set_defaults(func=mod.execute)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"nasorch: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasorch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
