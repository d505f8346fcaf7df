"""`python -m training`: generate, validate, train, promote, rollback, status.

Flags override CHURN_TRAINING_* environment variables, which override the defaults in
training/settings.py. Progress goes to stderr; the JSON result goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from model import storage
from model.errors import BundleError
from training import registry
from training.settings import TrainingSettings
from training.synthetic import generate, labels
from training.train import load_and_validate, train
from training.validation import DataError

EXIT_DATA = 2
EXIT_FAILED = 1

log = logging.getLogger("training")


def _settings_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    """Expose TrainingSettings fields as flags, with the field descriptions as help."""
    fields = TrainingSettings.model_fields
    for name in names:
        info = fields[name]
        flag = "--" + name.replace("_", "-")
        help_text = (info.description or "") + f" [env CHURN_TRAINING_{name.upper()}]"
        if name == "c_grid":
            parser.add_argument(flag, type=float, nargs="+", default=None, help=help_text)
        else:
            parser.add_argument(flag, default=None, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train, register and promote the customer-churn model.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="Only warnings on stderr.")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate", help="Write synthetic customers in the Telco schema."
    )
    generate.add_argument("--rows", type=int, default=5000)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument(
        "--dirty-fraction",
        type=float,
        default=0.0,
        help="Share of rows given real-export quirks (case, whitespace, duplicates, bad values).",
    )
    generate.add_argument(
        "--signal",
        type=float,
        default=1.0,
        help="Scale of the contract and fiber effects on churn (0: a worse model's data).",
    )
    generate.add_argument(
        "--drift",
        type=float,
        default=0.0,
        help="Population shift: more month-to-month contracts, charges up 20%% per unit.",
    )
    generate.add_argument("--output", required=True, help="CSV path (local or s3://).")
    generate.add_argument(
        "--labels-output",
        help="Also write these customers' outcomes (customerID, Churn, label_date) to this CSV.",
    )
    generate.add_argument(
        "--label-date",
        default=None,
        help="label_date of the outcomes (ISO date; default today, UTC).",
    )

    validate = commands.add_parser("validate", help="Check a CSV; print the JSON report.")
    _settings_flags(
        validate,
        "data",
        "max_dropped_fraction",
        "max_missing_fraction",
        "min_rows",
        "min_class_rows",
    )

    train = commands.add_parser("train", help="Validate, fit, write the bundle, register it.")
    _settings_flags(train, *TrainingSettings.model_fields)

    promote = commands.add_parser("promote", help="Move the 'champion' alias to a version.")
    promote.add_argument("--version", default=None, help="Registry version (default: 'candidate').")
    _settings_flags(promote, "model_name", "mlflow_tracking_uri", "output")

    for name, text in (
        ("rollback", "Move 'champion' back to the version it replaced."),
        ("status", "Show the 'champion' and 'candidate' versions."),
    ):
        _settings_flags(
            commands.add_parser(name, help=text), "model_name", "mlflow_tracking_uri", "output"
        )
    return parser


def _settings(args: argparse.Namespace) -> TrainingSettings:
    given = {
        k: v for k, v in vars(args).items() if k in TrainingSettings.model_fields and v is not None
    }
    return TrainingSettings(**given)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "generate":
        log.info("generating %d rows (seed %d)", args.rows, args.seed)
        frame = generate(
            args.rows, args.seed, args.dirty_fraction, signal=args.signal, drift=args.drift
        )
        storage.write_bytes(args.output, frame.to_csv(index=False).encode())
        result = {"output": args.output, "rows": len(frame), "seed": args.seed}
        if args.labels_output:
            label_date = args.label_date or datetime.now(UTC).date().isoformat()
            outcomes = labels(frame, label_date).to_csv(index=False).encode()
            storage.write_bytes(args.labels_output, outcomes)
            result["labels_output"] = args.labels_output
        return result
    settings = _settings(args)
    if args.command == "validate":
        _, report, _ = load_and_validate(settings)
        log.info("%s", report.summary())
        if not report.passed:
            print(report.model_dump_json(indent=2))
            raise DataError(" | ".join(report.failures))
        return report.model_dump()
    if args.command == "train":
        return train(settings)
    if args.command == "promote":
        return registry.promote(settings, args.version)
    if args.command == "rollback":
        return registry.rollback(settings)
    return registry.status(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        # Libraries print too (MLflow announces run URLs): keep stdout for the JSON result.
        with contextlib.redirect_stdout(sys.stderr):
            result = _run(args)
    except (DataError, ValidationError) as exc:
        log.error("%s", exc)
        return EXIT_DATA
    except (registry.RegistryError, BundleError) as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0
