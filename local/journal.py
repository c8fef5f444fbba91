"""What CloudTrail would log of any client's S3 bucket calls on the emulator, kept for the local
pipeline to play (moto logs nothing).

``RecordedS3`` plays CloudTrail for the calls a test makes through it; a program the test does
not control (``doctor --live``) calls S3 directly. This journal notes each successful
CreateBucket, DeleteBucket, PutBucketEncryption and DeleteBucketEncryption on general purpose
buckets (path-style requests, as boto3 makes them to an endpoint URL), with the caller's account
and the region of its signature; ``GET /_local/cloudtrail/journal?after=N`` returns the entries
after the N-th, and ``LocalPipeline.serve`` turns them into CloudTrail events.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

JOURNAL_PATH = "/_local/cloudtrail/journal"
_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/s3/aws4_request")
_BUCKET_PATH = re.compile(r"^/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?$")
_CALLS = {
    ("PUT", ""): "CreateBucket",
    ("DELETE", ""): "DeleteBucket",
    ("PUT", "encryption"): "PutBucketEncryption",
    ("DELETE", "encryption"): "DeleteBucketEncryption",
}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Journal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, str]] = []

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if environ.get("PATH_INFO") == JOURNAL_PATH:
                return self._answer(environ, start_response)
            entry = _call_of(environ)
            if entry is None:
                return app(environ, start_response)
            statuses: list[int] = []

            def noting(status: str, headers: Any, *rest: Any) -> Any:
                statuses.append(int(status.split(maxsplit=1)[0]))
                return start_response(status, headers, *rest)

            body = list(app(environ, noting))
            if statuses and 200 <= statuses[0] < 300:
                with self._lock:
                    self._entries.append(entry)
            return body

        return middleware

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        after = int(query.get("after", ["0"])[0])
        with self._lock:
            entries = self._entries[after:]
        body = json.dumps({"entries": entries, "next": after + len(entries)}).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


def _call_of(environ: dict[str, Any]) -> dict[str, str] | None:
    credential = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    bucket = _BUCKET_PATH.match(str(environ.get("PATH_INFO", "")))
    if credential is None or bucket is None:
        return None
    query = str(environ.get("QUERY_STRING", "")).split("&")[0].split("=")[0]
    event_name = _CALLS.get((str(environ.get("REQUEST_METHOD")), query))
    if event_name is None:
        return None
    from moto.iam.models import get_account_id_from  # noqa: PLC0415 - in the emulator only

    return {
        "eventName": event_name,
        "bucket": bucket.group(1),
        "account": get_account_id_from(credential.group(1)),
        "region": credential.group(2),
    }
