"""Alerts and notices as chat messages (§15): Amazon Q Developer in chat applications (formerly
AWS Chatbot) custom notifications, rendered from the alert document alone.

The format is the Administrator Guide's "Custom notifications": ``version`` 1.0, ``source``
custom, ``content`` (client-markdown title, description, nextSteps, keywords) and ``metadata``
whose ``threadId`` groups messages in one thread. The thread is the drift's: the bucket and when
its drift began, so the RESOLVED notice lands under the alert it closes (the channel must allow
"notification updates in a thread").
"""

from __future__ import annotations

import hashlib
from typing import Any

from .alerts import KEY_CHANGE, describe_exception
from .lifecycle import RESOLVED

VERSION = "1.0"
SOURCE = "custom"
_ICONS = {
    "DRIFT": ":red_circle:",
    "UNVERIFIABLE": ":large_orange_circle:",
    RESOLVED: ":large_green_circle:",
    KEY_CHANGE: ":key:",
}


def drift_id(document: dict[str, Any]) -> str:
    """One drift of one bucket, from its first detection to its resolution: what threads the
    alert, any alert about a change of the same open drift, and the RESOLVED notice."""
    return _thread_id(document["bucketArn"], document["account"], document.get("firstDetected"))


def _thread_id(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def chat_notification(document: dict[str, Any]) -> dict[str, Any]:
    """The custom notification of an alert, a notice or a key summary."""
    if document["status"] == KEY_CHANGE:
        return _key_change(document)
    status = document["status"]
    bucket = document["bucket"]
    where = f"{document['account']}, {document['region']}"
    codes = [v["code"] for v in document["violations"]]
    if status == RESOLVED:
        resolution = document["resolution"]
        title = f"{_ICONS[RESOLVED]} RESOLVED: {bucket} ({where})"
        description = (
            f"The {resolution['previousStatus'].lower()} of `{bucket}` is resolved: now "
            f"{resolution['outcome'].lower()}"
            + (f" ({resolution['detail']})" if resolution.get("detail") else "")
            + f". It was {', '.join(resolution['previousViolations']) or 'open'} since "
            f"{resolution['driftedSince'] or 'an unknown time'}."
        )
        next_steps: list[str] = []
    else:
        title = f"{_ICONS.get(status, '')} {status} {document['severity']}: {bucket} ({where})"
        lines = [f"*{v['code']}*: {v['message']}" for v in document["violations"]]
        lines += describe_exception(document)[1:]
        trigger = document["trigger"]
        if trigger.get("eventName"):
            lines.append(
                f"Trigger: {trigger['eventName']} by {trigger.get('actor') or 'unknown'} at "
                f"{trigger.get('eventTime')}"
            )
        description = "\n".join(lines)
        next_steps = (
            [f"Fix: `{line}`" for line in document["remediation"].splitlines() if line]
            if document.get("remediation")
            else []
        )
    return {
        "version": VERSION,
        "source": SOURCE,
        "id": document.get("fingerprint") or drift_id(document),
        "content": {
            "textType": "client-markdown",
            "title": title.strip(),
            "description": description,
            "nextSteps": next_steps,
            "keywords": [status, document.get("bucketKind") or "general-purpose", *codes],
        },
        "metadata": {
            "threadId": drift_id(document),
            "summary": f"{status}: {bucket}",
            "eventType": f"S3Encryption{status.title()}",
            "relatedResources": [document["bucketArn"]],
            "additionalContext": {
                "account": document["account"],
                "region": document["region"],
                "severity": str(document["severity"]),
            },
        },
    }


def _key_change(document: dict[str, Any]) -> dict[str, Any]:
    trigger = document["trigger"]
    names = ", ".join(f"`{b['bucket']}`" for b in document["buckets"])
    more = document["affectedBuckets"] - len(document["buckets"])
    return {
        "version": VERSION,
        "source": SOURCE,
        "id": str(trigger.get("eventId") or document["key"]),
        "content": {
            "textType": "client-markdown",
            "title": (
                f"{_ICONS[KEY_CHANGE]} {trigger.get('eventName')} on a KMS key "
                f"{document['affectedBuckets']} buckets use"
            ),
            "description": (
                f"{trigger.get('eventName')} by {trigger.get('actor') or 'unknown'} on "
                f"`{document['key']}`.\nBuckets: {names}" + (f" and {more} more" if more else "")
            ),
            "nextSteps": [],
            "keywords": [KEY_CHANGE, str(trigger.get("eventName"))],
        },
        "metadata": {
            # Each key event is a thread of its own: its buckets' alerts have theirs.
            "threadId": _thread_id(document["key"], trigger.get("eventId")),
            "summary": f"{trigger.get('eventName')}: {document['affectedBuckets']} buckets",
            "eventType": "S3EncryptionKeyChange",
            "relatedResources": [document["key"]],
            "additionalContext": {"severity": str(document["severity"])},
        },
    }
