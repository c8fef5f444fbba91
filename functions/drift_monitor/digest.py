"""The sweep's one message per run: a DIGEST document for machines, an email a person can scan.

Each listed finding is the §6 alert document (without the policy, given once at the top), built by
``alert_document``, so a digest entry and a single alert never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .alerts import (
    SCHEMA_VERSION,
    SUBJECT_LIMIT,
    Alert,
    alert_document,
    message_body,
    policy_and_footer,
    printable,
)
from .models import Finding, Severity, Status
from .policy import Policy
from .sweep import SweepResult, Tally

DIGEST = "DIGEST"
# SNS takes at most 256 KiB per message; leave room for the subject and attributes.
MESSAGE_LIMIT = 240 * 1024
# Most severe first; findings that do not alert have no severity and come last.
_SEVERITY_ORDER: dict[Severity | None, int] = {
    Severity.HIGH: 0,
    Severity.MEDIUM: 1,
    Severity.LOW: 2,
    None: 3,
}


@dataclass(frozen=True)
class SweepRun:
    result: SweepResult
    trigger: dict[str, Any]
    started_at: str
    finished_at: str


def summary(tally: Tally) -> dict[str, int]:
    """The counts shared by the digest and the scanner's JSON output."""
    return {
        "buckets": tally.evaluated,
        "compliant": tally.statuses[Status.COMPLIANT],
        "drift": tally.statuses[Status.DRIFT],
        "unverifiable": tally.statuses[Status.UNVERIFIABLE],
        "exempt": tally.statuses[Status.EXEMPT],
        "vanished": tally.statuses[Status.VANISHED],
    }


def most_severe_first(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (_SEVERITY_ORDER[f.severity], f.bucket.name),
    )


def build_digest(run: SweepRun, policy: Policy) -> Alert:
    """The digest of a run, listing as many findings as one SNS message holds, most severe first.

    Entries are built only while they may still fit, so a run with a million drifted buckets
    does not render a million descriptions to send a few hundred.
    """
    findings = most_severe_first([f for f in run.result.tally.kept if f.alerts])
    entries: list[dict[str, Any]] = []
    room = MESSAGE_LIMIT
    for finding in findings:
        entry = _entry(finding, policy)
        room -= _encoded_size(entry)
        if room < 0:
            break
        entries.append(entry)
    listed = len(entries)
    while True:
        document = digest_document(run, policy, entries[:listed], total=len(findings))
        alert = _alert(document)
        size = len(message_body(alert).encode())
        if size <= MESSAGE_LIMIT or listed == 0:
            return alert
        listed = min(listed - 1, int(listed * MESSAGE_LIMIT / size))


def _encoded_size(entry: dict[str, Any]) -> int:
    """What one entry adds to the SNS message: its JSON, encoded again as the ``default`` string,
    and its lines in the email."""
    email = "\n".join(_describe_entry(entry))
    return len(json.dumps(json.dumps(entry))) + len(json.dumps(email))


def digest_document(
    run: SweepRun, policy: Policy, entries: list[dict[str, Any]], total: int
) -> dict[str, Any]:
    result = run.result
    severities = [entry["severity"] for entry in entries]
    severity = next((s.value for s in Severity if s.value in severities), Severity.LOW.value)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "status": DIGEST,
        "severity": severity,
        "account": result.account,
        "trigger": run.trigger,
        "run": {
            "startedAt": run.started_at,
            "finishedAt": run.finished_at,
            "complete": result.complete,
            "stoppedAfter": result.stopped_after,
        },
        "summary": summary(result.tally),
        "violationCounts": {
            code.value: count for code, count in sorted(result.tally.violations.items())
        },
        "findings": entries,
        "listed": len(entries),
        "truncated": len(entries) < total,
        "policy": policy.to_dict(),
    }


def _entry(finding: Finding, policy: Policy) -> dict[str, Any]:
    document = alert_document(finding, policy)
    del document["schemaVersion"], document["policy"]
    return document


def _alert(document: dict[str, Any]) -> Alert:
    return Alert(
        subject=digest_subject(document),
        document=document,
        email=render_digest_email(document),
        attributes={
            "status": DIGEST,
            "severity": document["severity"],
            "account": document["account"],
        },
    )


def digest_subject(document: dict[str, Any]) -> str:
    counts = document["summary"]
    state = "" if document["run"]["complete"] else " (incomplete)"
    return printable(
        f"[DIGEST] {counts['drift']} drifted, {counts['unverifiable']} unverifiable of "
        f"{counts['buckets']} buckets{state} ({document['account']})"
    )[:SUBJECT_LIMIT]


def render_digest_email(document: dict[str, Any]) -> str:
    counts = document["summary"]
    run = document["run"]
    lines = [
        f"Encryption sweep of account {document['account']}: {counts['drift']} of "
        f"{counts['buckets']} buckets drift from your policy, {counts['unverifiable']} could not "
        "be verified.",
        "",
        f"Swept:          {run['startedAt']} to {run['finishedAt']}",
    ]
    if not run["complete"]:
        lines += [
            "",
            "INCOMPLETE: the sweep ran out of time after "
            f"{counts['buckets']} buckets (the last one started was {run['stoppedAfter']}).",
            "Buckets after it in name order were not evaluated; run `s3-encryption-monitor scan`",
            "to cover them.",
        ]
    lines += [
        "",
        f"  {'buckets evaluated':<19}{counts['buckets']:>8}",
        f"  {'compliant':<19}{counts['compliant']:>8}",
        f"  {'drift':<19}{counts['drift']:>8}",
        f"  {'unverifiable':<19}{counts['unverifiable']:>8}",
        f"  {'exempt':<19}{counts['exempt']:>8}   (evaluated, not listed)",
        f"  {'vanished':<19}{counts['vanished']:>8}   (deleted while the sweep ran)",
    ]
    if document["violationCounts"]:
        width = max(len(code) for code in document["violationCounts"]) + 2
        lines += ["", "Buckets per violation:"]
        lines += [
            f"  {code:<{width}}{count:>8}" for code, count in document["violationCounts"].items()
        ]
    for status, title in (("DRIFT", "Drift"), ("UNVERIFIABLE", "Could not be verified")):
        entries = [entry for entry in document["findings"] if entry["status"] == status]
        if entries:
            lines += ["", f"{title} ({len(entries)} listed), most severe first:"]
            for entry in entries:
                lines += _describe_entry(entry)
    if document["truncated"]:
        lines += [
            "",
            f"Only the {document['listed']} most severe buckets fit in one message. For all of "
            "them, run:",
            "  s3-encryption-monitor scan --only-drift",
        ]
    lines += policy_and_footer(
        document["policy"], "the scheduled sweep of S3 Encryption Drift Monitor", "digest"
    )
    return "\n".join(lines)


def _describe_entry(entry: dict[str, Any]) -> list[str]:
    lines = ["", f"  {entry['severity']:<7} s3://{entry['bucket']}  ({entry['region']})"]
    lines += [f"          {v['code']}: {v['message']}" for v in entry["violations"]]
    if entry["remediation"]:
        lines.append(f"          fix: {entry['remediation']}")
    return lines
