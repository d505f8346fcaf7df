"""``python -m devstack demo|up``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack.demo import run, say
from devstack.processes import StackError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Train on synthetic data and serve the bundle locally: KServe's "
        "kserve-sklearnserver behind the churn transformer, both on 127.0.0.1.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="Start, send example requests, print, stop.")
    up = commands.add_parser("up", help="Start and stay up for curl calls until Ctrl-C.")
    for command, default_port in ((demo, 0), (up, 8080)):
        command.add_argument(
            "--bundle", type=Path, help="Serve this bundle version directory instead of training."
        )
        command.add_argument(
            "--work-dir", type=Path, help="Keep data, bundles and logs here (default: a temp dir)."
        )
        command.add_argument(
            "--port", type=int, default=default_port, help="Transformer port (0: any free port)."
        )
        command.add_argument("--rows", type=int, default=2000, help="Synthetic training rows.")
        command.add_argument("--keep", action="store_true", help="Keep the temporary work dir.")
    args = parser.parse_args(argv)
    try:
        return run(
            stay_up=args.command == "up",
            bundle=args.bundle,
            work_dir=args.work_dir,
            port=args.port,
            rows=args.rows,
            keep=args.keep,
        )
    except StackError as exc:
        say(f"failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
