"""Reading and writing bundle files on a local directory or an S3-compatible object store.

S3 settings come from the standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...),
so the same code talks to AWS, MinIO in cluster, or a test server on loopback.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

S3_SCHEME = "s3://"


def is_s3(uri: str) -> bool:
    return uri.startswith(S3_SCHEME)


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    if not bucket:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return bucket, key


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def s3_client() -> S3Client:
    return _s3_client(os.environ.get("AWS_ENDPOINT_URL"))


@cache
def _s3_client(endpoint: str | None) -> S3Client:
    # Custom endpoints (MinIO, test servers) rarely resolve bucket subdomains: use path style.
    style: Literal["path", "auto"] = "path" if endpoint else "auto"
    config = Config(s3={"addressing_style": style}, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        body: bytes = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    return Path(uri).read_bytes()


def write_bytes(uri: str, data: bytes) -> None:
    """Write one object. Readers see either nothing or the whole object."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
    # Temporary files are private (0600); a bundle is read by other users (the predictor's UID).
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def list_names(uri: str) -> list[str]:
    """Names of the files directly inside a directory (a local path or an s3:// prefix)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        prefix = key.rstrip("/") + "/"
        pages = (
            s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        )
        return sorted(o["Key"][len(prefix) :] for page in pages for o in page.get("Contents", []))
    return sorted(p.name for p in Path(uri).iterdir() if p.is_file())


def exists(uri: str) -> bool:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        response = s3_client().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return bool(response.get("KeyCount"))
    return Path(uri).exists()
