"""`python -m monitoring report`: realized quality per arm, drift and the A/B verdict.

Progress goes to stderr; a JSON summary (verdict and output files) goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from model.errors import BundleError
from monitoring import io
from monitoring.html import render
from monitoring.report import Request, build
from monitoring.settings import MonitoringSettings
from monitoring.tracking import TrackingError, log_report

EXIT_INPUT = 2
EXIT_FAILED = 1

log = logging.getLogger("monitoring")


def _timestamp(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or timestamp") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring",
        description="Join the prediction log with delayed churn labels and judge the A/B test.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="Only warnings on stderr.")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="Write report.json and report.html.")
    report.add_argument(
        "--predictions",
        required=True,
        help="Prediction log: CSV/Parquet file, dir or s3:// prefix.",
    )
    report.add_argument(
        "--labels", required=True, help="Labels: customerID, Churn (Yes/No)[, label_date]."
    )
    report.add_argument("--since", type=_timestamp, help="First scored_at included (UTC if bare).")
    report.add_argument("--until", type=_timestamp, help="scored_at before this only.")
    report.add_argument(
        "--bundles", help="Bundle root (local or s3://) holding <model>/<version>/metadata.json."
    )
    report.add_argument("--output", default="monitoring-report", help="Local dir or s3:// prefix.")
    report.add_argument(
        "--mlflow", action="store_true", help="Log headline metrics to each arm's model version."
    )
    return parser


def _run(args: argparse.Namespace) -> dict[str, object]:
    settings = MonitoringSettings()
    request = Request(args.predictions, args.labels, args.since, args.until, args.bundles)
    built = build(request, settings)
    report = built.report
    json_uri = io.write_output(
        args.output, "report.json", report.model_dump_json(indent=2).encode()
    )
    log.info("rendering the HTML report")
    html = render(report, built.joined, settings.psi_alert)
    html_uri = io.write_output(args.output, "report.html", html.encode())
    summary: dict[str, object] = {
        "verdict": report.verdict.value,
        "reason": report.comparison.reason,
        "report_json": json_uri,
        "report_html": html_uri,
        "joined": report.counts["joined"],
    }
    if args.mlflow:
        summary["mlflow"] = log_report(report, settings)
    return summary


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
            summary = _run(args)
    except ValueError as exc:  # io.InputError, settings' ValidationError, an empty key file
        log.error("%s", exc)
        return EXIT_INPUT
    except (BundleError, TrackingError) as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
