"""The `nasorch` command line. Every user error is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from orchestrator.core.errors import RecordsUnsent, SearchFinished, UserError
from trainables.errors import InputError

# Sub-commands that live in their own modules: each has add_arguments(parser) and execute(args).
EXTERNAL = {
    "check": (
        "orchestrator.commands.check",
        "validate a config and show what it would search, in seconds",
    ),
    "search": (
        "orchestrator.commands.auto",
        "hand over data, get the best model within a time budget",
    ),
    "bench": ("orchestrator.commands.bench", "benchmark searchers on a tabular NAS benchmark"),
    "simulate": (
        "orchestrator.simulation.study",
        "replay searches on learning curves in simulated time (searchers x schedulers)",
    ),
    "compare": (
        "orchestrator.commands.compare",
        "compare searches recorded in MLflow: table, CSV, PNG",
    ),
}

# The extra that installs what a sub-command needs beyond nasorch's own dependencies.
EXTRAS = {"bench": "bench", "simulate": "bench"}


def _cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.core import phases
    from orchestrator.execution.results import print_summary
    from orchestrator.execution.runner import run

    overrides = list(args.set)
    if args.warm_start:  # the CLI's list replaces the config's
        overrides.append(f"warm_start.experiments={json.dumps(args.warm_start)}")
    result = run(
        args.config,
        overrides=overrides,
        address=args.address,
        progress=not args.quiet,
        resume=args.resume,
    )
    print_summary(result, top=args.top)
    phases.report()
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from orchestrator.execution.results import print_summary
    from orchestrator.execution.runner import resume_search

    result = resume_search(args.experiment, address=args.address, progress=not args.quiet)
    print_summary(result, top=args.top)
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    import os

    from orchestrator.config import default_tracking_uri

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"{uri} is a tracking server already: open it in a browser.")
        return 0
    from orchestrator.commands.compare import newest_search_url
    from orchestrator.commands.ui import serve

    url = f"http://{args.host}:{args.port}"
    page = newest_search_url(uri, url)
    print(f"MLflow UI on {url} for {uri} (Ctrl+C to stop)", flush=True)
    if page:
        print(f"Runs of the newest search: {page}", flush=True)
    return serve(uri, args.host, args.port, on_up=lambda: _open_browser_when_up(url, page or url))


def _open_browser_when_up(url: str, page: str) -> None:
    """Open `page` once the server answers, and only where a browser can show it (a desktop,
    not an SSH session or a container)."""
    import os
    import threading
    import urllib.request
    import webbrowser

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return

    def wait_and_open() -> None:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).read()
            except OSError:
                threading.Event().wait(0.5)
                continue
            webbrowser.open(page)
            return

    threading.Thread(target=wait_and_open, daemon=True).start()


def version() -> str:
    """The installed nasorch's version (pyproject.toml's, through the package's metadata)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("nasorch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser(wanted: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; sub-commands of other modules (EXTERNAL) get their arguments only when in
    `wanted` (the command line's words), so other commands do not pay for their imports."""
    parser = argparse.ArgumentParser(
        prog="nasorch", description="Neural-architecture and hyperparameter search on Ray Tune."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
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
    p.add_argument(
        "--resume", action="store_true",
        help="continue the newest unfinished search of this config's name, if there is one",
    )  # fmt: skip
    p.add_argument(
        "--warm-start", action="append", default=[], metavar="EXPERIMENT",
        help="learn from this MLflow experiment's trials (repeatable; docs/how-to/warm-start.md)",
    )  # fmt: skip
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("resume", help="continue a search whose driver stopped or crashed")
    p.add_argument("experiment", help="Ray experiment folder printed by `nasorch run`, or a name")
    p.add_argument("--address", default=None, help="Ray cluster address (auto, ray://host:10001)")
    p.add_argument("--top", type=int, default=10, help="rows in the final leaderboard")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("ui", help="open the MLflow UI on the local store (bound to 127.0.0.1)")
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="default: MLFLOW_TRACKING_URI or ./nasorch_results/mlflow.db",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=_cmd_ui)

    command = next((w for w in wanted or () if not w.startswith("-")), None)
    for name, (module, help_text) in EXTERNAL.items():
        p = sub.add_parser(name, help=help_text)
        if name not in (wanted or ()):  # imported only when asked for: `nasorch run` starts fast
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            if name != command:  # a word elsewhere on the line (`nasorch resume bench`)
                continue
            # One line naming what to install, not an AttributeError (no `func`) later.
            extra = EXTRAS.get(name)
            fix = f'pip install -e ".[{extra}]"' if extra else "reinstall nasorch: pip install -e ."
            raise UserError(f"nasorch {name} needs {e.name}, not installed: {fix}") from None
        mod.add_arguments(p)
        p.set_defaults(func=mod.execute)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(words).parse_args(words)
        return int(args.func(args) or 0)
    except (UserError, InputError) as e:
        print(f"nasorch: error: {e}", file=sys.stderr)
        return 2
    except RecordsUnsent as e:
        print(f"nasorch: error: {e}", file=sys.stderr)
        return 3
    except SearchFinished as e:
        print(f"nasorch: {e}; nothing to resume")
        return 0
    except KeyboardInterrupt:
        print("nasorch: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The `nasorch` command: main(), then a quick exit. Once a search is recorded and Ray is
    stopped, the interpreter's own teardown (Ray's and torch's native threads) took seconds of
    every `nasorch run` and nothing is left for it to do."""
    import faulthandler
    import logging
    import os
    import signal

    from orchestrator import compat

    # `kill -USR2 <pid>` prints every thread's stack to stderr: where a driver that seems stuck
    # is waiting, without stopping it.
    faulthandler.register(signal.SIGUSR2, all_threads=True)  # USR1 stops a search (Ray, ours)
    code = main()
    # Everything registered to run at exit (Ray's shutdown, multiprocessing's clean-up of the
    # writer's queues, MLflow's), then no more.
    compat.run_exit_handlers()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
