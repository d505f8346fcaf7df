"""Reading the prediction log and the labels (CSV or Parquet; a file, a directory or an S3
prefix), and writing the report's files to a local directory or an S3 prefix."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pandas as pd

from model import storage

log = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv")


class InputError(ValueError):
    """An input is missing, unreadable or lacks what the report needs; the message says where."""


def list_files(uri: str) -> list[str]:
    """The CSV and Parquet files at a URI: the file itself, or every one under the prefix."""
    if storage.is_s3(uri):
        bucket, prefix = storage.split_s3(uri)
        if prefix.endswith(SUFFIXES):
            return [uri]
        pages = (
            storage.s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/" if prefix else "")
        )
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return sorted(f"s3://{bucket}/{k}" for k in keys if k.endswith(SUFFIXES))
    path = Path(uri)
    if path.is_file():
        return [uri]
    if not path.is_dir():
        raise InputError(f"{uri}: no such file or directory")
    return sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))


def read_table(uri: str, what: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """All files at a URI as one frame, each checked for the required columns.

    `what` names the input in errors ("predictions"); the `_source` column names each row's file.
    """
    files = list_files(uri)
    if not files:
        raise InputError(f"{what}: no .csv or .parquet files at {uri}")
    frames = []
    for name in files:
        log.info("reading %s %s", what, name)
        try:
            data = storage.read_bytes(name)
        except Exception as exc:
            raise InputError(f"{what}: cannot read {name}: {exc}") from exc
        try:
            if name.endswith(".parquet"):
                frame = pd.read_parquet(io.BytesIO(data))
            else:
                # Strings stay strings: IDs and categories must not turn into numbers.
                frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        except Exception as exc:
            raise InputError(f"{what}: {name} is not valid {Path(name).suffix[1:]}: {exc}") from exc
        for column in required:
            if column not in frame.columns:
                raise InputError(f"{what}: column {column!r} is missing in {name}")
        frames.append(frame.assign(_source=name, _row=range(len(frame))))
    return pd.concat(frames, ignore_index=True)


def write_output(directory: str, name: str, data: bytes) -> str:
    uri = storage.join(directory, name)
    storage.write_bytes(uri, data)
    return uri
