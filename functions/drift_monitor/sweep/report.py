"""The sweep's full report: every bucket of a run, as JSON Lines and CSV, in the report bucket.

A run's report lives under ``runs/<run id>/``: each work item (an account's listing page) writes
its own ``buckets/<account>/<page>-<part>.jsonl`` and ``.csv`` (``regional-<part>`` for the
account's directory and table buckets), and the candidates for the digest
(its most severe findings) under ``candidates/``; the worker that finishes the run writes
``manifest.json`` with the counts and the list of files. Parts are written whole, so a retried
item overwrites its own files and a report never holds a bucket twice.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..domain.work import WorkItem

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CSV_COLUMNS = (
    "account",
    "region",
    "bucket",
    "kind",
    "status",
    "severity",
    "violations",
    "algorithms",
    "kms_keys",
    "bucket_keys",
    "blocked_encryption_types",
    "evaluated_at",
    "remediation",
    # §15: the exception in force or expired, its owner and its end.
    "exception",
    "exception_owner",
    "exception_expires",
)
_JSON_CONTENT = "application/json"


def jsonl(documents: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(document, separators=(",", ":")) + "\n" for document in documents)


def csv_text(documents: Iterable[dict[str, Any]]) -> str:
    """One row per bucket; a bucket with several rules joins their values with ``|``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(document) for document in documents)
    return out.getvalue()


def csv_row(document: dict[str, Any]) -> list[str]:
    """A bucket's row of ``CSV_COLUMNS``, from its §6 document."""
    rules = (document.get("observed") or {}).get("rules") or []
    return [
        document["account"],
        document["region"],
        document["bucket"],
        document.get("bucketKind") or "general-purpose",
        document["status"],
        document["severity"] or "",
        "|".join(violation["code"] for violation in document["violations"]),
        "|".join(rule["algorithm"] for rule in rules),
        "|".join(rule["kmsKeyId"] or "" for rule in rules),
        "|".join(str(rule["bucketKeyEnabled"]).lower() for rule in rules),
        "|".join(",".join(rule["blockedEncryptionTypes"] or []) for rule in rules),
        document["trigger"]["eventTime"] or "",
        document["remediation"] or "",
        *_exception_columns(document.get("exception")),
    ]


def _exception_columns(exception: dict[str, Any] | None) -> list[str]:
    if not exception:
        return ["", "", ""]
    source = exception["source"] + (" (expired)" if exception["expired"] else "")
    return [source, exception["owner"] or "", exception["expires"] or ""]


class ReportStore:
    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    @staticmethod
    def prefix(run_id: str) -> str:
        return f"runs/{run_id}/"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def write_part(self, item: WorkItem, documents: list[dict[str, Any]]) -> None:
        account, part = item.item_id.split("/", 1)  # <page>/<part>, or regional/<part>
        name = f"{self.prefix(item.run_id)}buckets/{account}/{part.replace('/', '-')}"
        self._put(f"{name}.jsonl", jsonl(documents), "application/x-ndjson")
        self._put(f"{name}.csv", csv_text(documents), "text/csv")

    def write_candidates(self, item: WorkItem, entries: list[dict[str, Any]]) -> None:
        key = f"{self.prefix(item.run_id)}candidates/{item.item_id.replace('/', '-')}.json"
        self._put(key, json.dumps(entries), _JSON_CONTENT)

    def candidates(self, run_id: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for key in self._keys(f"{self.prefix(run_id)}candidates/"):
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            entries.extend(json.loads(body))
        return entries

    def parts(self, run_id: str) -> list[str]:
        return self._keys(f"{self.prefix(run_id)}buckets/")

    def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> str:
        key = f"{self.prefix(run_id)}manifest.json"
        self._put(key, json.dumps(manifest, indent=2), _JSON_CONTENT)
        return self.uri(key)

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys.extend(entry["Key"] for entry in page.get("Contents", []))
        return sorted(keys)

    def _put(self, key: str, body: str, content_type: str) -> None:
        self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=body.encode(), ContentType=content_type
        )
