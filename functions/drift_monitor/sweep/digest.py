"""The sweep's one message per run: a DIGEST document for machines, an email a person can scan.

Each listed finding is the §6 alert document (without the policy, given once at the top), built by
``alert_document``, so a digest entry and a single alert never disagree. A run over many accounts
adds each account's counts and the S3 URI of the full report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..domain.alerts import (
    SCHEMA_VERSION,
    SUBJECT_LIMIT,
    Alert,
    alert_document,
    message_body,
    policy_and_footer,
    printable,
)
from ..domain.exceptions import EXPIRING_DAYS
from ..domain.lifecycle import AGE_BANDS, AGE_PREFIX, MISSED_PREFIX, NEW_DRIFT, RESOLVED_SINCE
from ..domain.models import BucketKind, Finding, Severity, Status
from ..domain.policy import Policy
from .engine import SweepResult

DIGEST = "DIGEST"
# SNS takes at most 256 KiB per message; leave room for the subject and attributes.
MESSAGE_LIMIT = 240 * 1024
# Per-account counts may take at most this share of the message; past it only the accounts with
# something to report are listed (the report's manifest has them all).
ACCOUNTS_SHARE = 0.5
# Most severe first; findings that do not alert have no severity and come last.
_SEVERITY_ORDER: dict[str | None, int] = {
    Severity.HIGH: 0,
    Severity.MEDIUM: 1,
    Severity.LOW: 2,
    None: 3,
}
MISSED_MEANING = (
    "the sweep found these verdicts changed though no event had reported them: usually no trail "
    "logging S3 write management events there, a region not watched, or a forwarder or member "
    "rule missing (run s3-encryption-monitor doctor)"
)
_COUNTED = (
    ("buckets", None),
    ("compliant", Status.COMPLIANT),
    ("drift", Status.DRIFT),
    ("unverifiable", Status.UNVERIFIABLE),
    ("exempt", Status.EXEMPT),
    ("vanished", Status.VANISHED),
)


@dataclass(frozen=True)
class SweepRun:
    """Everything a digest says about one run, however it was swept."""

    account: str  # the monitor's own account
    trigger: dict[str, Any]
    started_at: str
    finished_at: str
    counts: dict[str, int]  # ``summary()`` of the whole run
    violation_counts: dict[str, int]
    # The most severe findings as digest entries (any order), at least as many as one message holds.
    entries: list[dict[str, Any]]
    failed_items: int = 0  # work items given up after every retry: the run is incomplete
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> counts and error
    report: dict[str, str] | None = None  # where the full report is: {"uri", "manifest"}
    # Moves since the previous sweep (``sweep.states`` counters); None where no state is kept.
    changes: dict[str, int] | None = None
    # The heartbeat's silent event paths ({account, region, lastBeat}); None: heartbeat off.
    silent_paths: list[dict[str, Any]] | None = None

    @property
    def alerting(self) -> int:
        """Drifted and unverifiable buckets in the whole run (``entries`` may hold fewer)."""
        return self.counts["drift"] + self.counts["unverifiable"]

    @property
    def complete(self) -> bool:
        return self.failed_items == 0

    @property
    def unreachable(self) -> dict[str, str]:
        return {
            account: str(counts["error"])
            for account, counts in self.accounts.items()
            if counts.get("error")
        }


def summary(statuses: Mapping[Status, int] | Mapping[str, int]) -> dict[str, int]:
    """The counts shared by the digest, the report and the scanner's JSON output."""
    counts = {name: statuses.get(status, 0) for name, status in _COUNTED if status}
    return {"buckets": sum(counts.values()), **counts}


def digest_entry(
    finding: Finding,
    policy: Policy,
    first_detected: str | None = None,
    new: bool | None = None,
) -> dict[str, Any]:
    """The §6 document of ``finding`` without what the digest gives once; a sweep that keeps
    state adds when the drift began and whether it is new since the previous sweep."""
    document = alert_document(finding, policy)
    del document["schemaVersion"], document["policy"]
    document["firstDetected"] = first_detected
    document["newSinceLastSweep"] = new
    return document


def most_severe_first(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (_SEVERITY_ORDER[f.severity], f.bucket.name))


def digest_candidates(
    findings: list[Finding],
    policy: Policy,
    limit: int,
    entry: Callable[[Finding], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The entries of ``findings`` that could make a digest: its ``limit`` most severe, and the
    ``limit`` exempt buckets whose exception ends first (the digest lists those ending within
    ``EXPIRING_DAYS``)."""
    make = entry or (lambda finding: digest_entry(finding, policy))
    alerting = [finding for finding in findings if finding.alerts]
    ending = sorted(
        (finding for finding in findings if not finding.alerts and _end_of(finding)),
        key=_end_of,
    )
    return [make(finding) for finding in most_severe_first(alerting)[:limit]] + [
        make(finding) for finding in ending[:limit]
    ]


def _end_of(finding: Finding) -> str:
    """When the finding's exception ends (YYYY-MM-DD), or "" without one: the digest lists
    exceptions by their end."""
    exemption = finding.exemption
    return (exemption.expires or "") if exemption is not None else ""


def run_of_result(
    result: SweepResult, policy: Policy, trigger: dict[str, Any], started_at: str, finished_at: str
) -> SweepRun:
    """A one-account run swept in one go (``sweep()``), as the digest sees it."""
    kept = [finding for finding in result.tally.kept if finding.alerts or _end_of(finding)]
    counts = summary(result.tally.statuses)
    return SweepRun(
        account=result.account,
        trigger=trigger,
        started_at=started_at,
        finished_at=finished_at,
        counts=counts,
        violation_counts={code.value: n for code, n in result.tally.violations.items()},
        entries=[digest_entry(finding, policy) for finding in kept],
        failed_items=0 if result.complete else 1,
        accounts={result.account: {**counts, "error": None}},
    )


def build_digest(run: SweepRun, policy: Policy) -> Alert:
    """The digest of a run, listing as many findings as one SNS message holds, most severe first.

    Entries are measured before they are placed, so a run with a million drifted buckets costs
    no more than the few hundred that fit.
    """
    entries = sorted((e for e in run.entries if e["severity"]), key=_entry_order)
    accounts = _accounts_that_fit(run)
    room = MESSAGE_LIMIT - len(json.dumps(accounts)) * 2
    listed = 0
    for entry in entries:
        room -= _encoded_size(entry)
        if room < 0:
            break
        listed += 1
    while True:
        document = digest_document(run, policy, entries[:listed], accounts)
        document["exceptions"] = exception_lists(
            run.entries, policy, date.fromisoformat(run.finished_at[:10])
        )
        alert = _alert(document)
        size = len(message_body(alert).encode())
        if size <= MESSAGE_LIMIT or listed == 0:
            return alert
        listed = min(listed - 1, int(listed * MESSAGE_LIMIT / size))


def _entry_order(entry: Mapping[str, Any]) -> tuple[int, str, str]:
    return (_SEVERITY_ORDER[entry["severity"]], entry["bucket"], entry["account"])


def _accounts_that_fit(run: SweepRun) -> dict[str, dict[str, Any]]:
    accounts = dict(sorted(run.accounts.items()))
    if len(json.dumps(accounts)) * 2 <= MESSAGE_LIMIT * ACCOUNTS_SHARE:
        return accounts
    return {
        account: counts
        for account, counts in accounts.items()
        if counts.get("error") or counts.get("drift") or counts.get("unverifiable")
    }


def _encoded_size(entry: dict[str, Any]) -> int:
    """What one entry adds to the SNS message: its JSON, encoded again as the ``default`` string,
    and its lines in the email."""
    email = "\n".join(_describe_entry(entry, with_account=True))
    return len(json.dumps(json.dumps(entry))) + len(json.dumps(email))


def digest_document(
    run: SweepRun,
    policy: Policy,
    entries: list[dict[str, Any]],
    accounts: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    severities = [entry["severity"] for entry in entries]
    severity = next((s.value for s in Severity if s.value in severities), Severity.LOW.value)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "status": DIGEST,
        "severity": severity,
        "account": run.account,
        "trigger": run.trigger,
        "run": {
            "startedAt": run.started_at,
            "finishedAt": run.finished_at,
            "complete": run.complete,
            # Kept for schema version 1: runs resume where they stop, so nothing is left after
            # a given bucket; ``failedItems`` counts the pages given up instead.
            "stoppedAfter": None,
            "failedItems": run.failed_items,
        },
        "summary": run.counts,
        "violationCounts": dict(sorted(run.violation_counts.items())),
        "accounts": accounts,
        "accountsTruncated": len(accounts) < len(run.accounts),
        "unreachableAccounts": len(run.unreachable),
        "report": run.report,
        "changes": _changes(run.changes),
        "silentPaths": run.silent_paths,
        "findings": entries,
        "listed": len(entries),
        "truncated": len(entries) < run.alerting,
        "policy": policy.to_dict(),
    }


def exception_lists(
    entries: Iterable[Mapping[str, Any]], policy: Policy, today: date
) -> dict[str, Any]:
    """§15: the exceptions that end within ``EXPIRING_DAYS`` and those that have ended, each
    with the buckets it covers (tag exceptions are the bucket's own). The policy's exceptions
    are listed even where they cover no bucket any more: someone still has to remove them."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for listed in policy.exceptions:
        ended = listed.expires < today
        if ended or (listed.expires - today).days <= EXPIRING_DAYS:
            described = {"source": listed.label, **listed.to_dict(), "expired": ended}
            groups[(listed.label, ended)] = {**described, "buckets": []}
    for entry in entries:
        said = entry.get("exception")
        if not said or not said["expires"]:
            continue
        ends = said["expires"]
        if not said["expired"] and (date.fromisoformat(ends) - today).days > EXPIRING_DAYS:
            continue
        source = said["source"]
        label = source if source.startswith("exceptions[") else f"{source}:{entry['bucket']}"
        group = groups.setdefault(
            (label, said["expired"]),
            {
                "source": source,
                "reason": said["reason"],
                "owner": said["owner"],
                "expires": ends,
                "expired": said["expired"],
                "buckets": [],
            },
        )
        group["buckets"].append(
            {key: entry[key] for key in ("bucket", "account", "region", "bucketKind")}
        )
    ordered = sorted(groups.values(), key=lambda group: (group["expires"], group["source"]))
    return {
        "expiringWithinDays": EXPIRING_DAYS,
        "expiring": [group for group in ordered if not group["expired"]],
        "expired": [group for group in ordered if group["expired"]],
    }


def has_exceptions_to_report(document: Mapping[str, Any]) -> bool:
    lists = document.get("exceptions") or {}
    return bool(lists.get("expiring") or lists.get("expired"))


def _changes(counts: dict[str, int] | None) -> dict[str, Any] | None:
    """New drift and resolved since the previous sweep, and open drift by how long it has lasted."""
    if counts is None:
        return None
    return {
        "newDrift": counts.get(NEW_DRIFT, 0),
        "resolved": counts.get(RESOLVED_SINCE, 0),
        "openDriftByAge": {band: counts.get(AGE_PREFIX + band, 0) for band, _ in AGE_BANDS},
        "missedByEvents": _missed(counts),
    }


def _missed(counts: dict[str, int]) -> dict[str, Any]:
    by_path = {
        name.removeprefix(MISSED_PREFIX): n
        for name, n in sorted(counts.items())
        if name.startswith(MISSED_PREFIX) and n
    }
    return {"total": sum(by_path.values()), "byAccountRegion": by_path, "meaning": MISSED_MEANING}


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
    where = f"({document['account']})"
    if len(document["accounts"]) > 1 or document["accountsTruncated"]:
        where = f"in {_plural(len(document['accounts']), 'account')}"
    unreachable = document["unreachableAccounts"]
    unreached = f", {unreachable} unreachable" if unreachable else ""
    silent = len(document.get("silentPaths") or [])
    blind = f", {_plural(silent, 'silent path')}" if silent else ""
    return printable(
        f"[DIGEST] {counts['drift']} drifted, {counts['unverifiable']} unverifiable of "
        f"{counts['buckets']} buckets{state} {where}{unreached}{blind}"
    )[:SUBJECT_LIMIT]


def render_digest_email(document: dict[str, Any]) -> str:
    counts = document["summary"]
    run = document["run"]
    accounts = document["accounts"]
    many = len(accounts) > 1 or document["accountsTruncated"]
    scope = f"{_plural(len(accounts), 'account')}" if many else f"account {document['account']}"
    lines = [
        f"Encryption sweep of {scope}: {counts['drift']} of {counts['buckets']} buckets drift "
        f"from your policy, {counts['unverifiable']} could not be verified.",
        "",
        f"Swept:          {run['startedAt']} to {run['finishedAt']}",
    ]
    if document["report"]:
        lines.append(f"Full report:    {document['report']['uri']} (JSON Lines and CSV)")
    if not run["complete"]:
        lines += [
            "",
            f"INCOMPLETE: {_plural(run['failedItems'], 'work item')} (an account's listing page "
            "each) failed after every retry;",
            "the buckets they hold are missing from these counts. The sweep worker's log names",
            "them; run `s3-encryption-monitor scan` to cover them.",
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
    changes = document.get("changes")
    if changes is not None:
        ages = ", ".join(f"{band}: {n}" for band, n in changes["openDriftByAge"].items())
        lines += [
            "",
            f"Since the previous sweep: {changes['newDrift']} newly drifted, "
            f"{changes['resolved']} resolved.",
            f"Open drift by age: {ages}.",
        ]
        missed = changes["missedByEvents"]
        if missed["total"]:
            lines += [
                "",
                f"Missed by events: {missed['total']}; {missed['meaning']}.",
            ]
            lines += [f"  {path}  {n}" for path, n in missed["byAccountRegion"].items()]
    if document["silentPaths"]:
        lines += [
            "",
            "SILENT: no heartbeat for two intervals from these accounts and regions; changes there "
            "may not reach the monitor (run s3-encryption-monitor doctor):",
        ]
        lines += [
            f"  {path['account']}/{path['region']}  last beat {path['lastBeat'] or 'never'}"
            for path in document["silentPaths"]
        ]
    lines += _exception_lines(document.get("exceptions"))
    unreachable = {a: c["error"] for a, c in accounts.items() if c.get("error")}
    if unreachable:
        lines += [
            "",
            "Accounts that could not be swept, or only in part (what could not be listed is "
            "not counted):",
        ]
        lines += [f"  {account}  {error}" for account, error in unreachable.items()]
    if many:
        lines += ["", *_account_table(accounts, truncated=document["accountsTruncated"])]
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
                lines += _describe_entry(entry, with_account=many)
    if document["truncated"]:
        where = (
            f"the full report ({document['report']['uri']})"
            if document["report"]
            else "s3-encryption-monitor scan --only-drift"
        )
        lines += [
            "",
            f"Only the {document['listed']} most severe buckets fit in one message. For all of "
            "them, see:",
            f"  {where}",
        ]
    lines += policy_and_footer(
        document["policy"], "the scheduled sweep of S3 Encryption Drift Monitor", "digest"
    )
    return "\n".join(lines)


def _exception_lines(lists: dict[str, Any] | None) -> list[str]:
    if not lists:
        return []
    lines: list[str] = []
    for key, title in (
        ("expiring", f"Exceptions ending within {lists['expiringWithinDays']} days"),
        ("expired", "Exceptions that have ended (what they accepted alerts again)"),
    ):
        if not lists[key]:
            continue
        lines += ["", f"{title}:"]
        for group in lists[key]:
            names = ", ".join(b["bucket"] for b in group["buckets"][:10])
            more = len(group["buckets"]) - 10
            covered = (names + (f" and {more} more" if more > 0 else "")) or "no bucket now"
            why = f"; reason: {group['reason']}" if group["reason"] else ""
            lines.append(
                f"  {group['source']}  {group['expires']}  owner {group['owner'] or 'not named'}"
                f"{why}: {covered}"
            )
    return lines


def _account_table(accounts: dict[str, dict[str, Any]], *, truncated: bool) -> list[str]:
    title = "Per account" + (
        " (only those with drift, unverifiable or errors)" if truncated else ""
    )
    lines = [
        f"{title}:",
        f"  {'account':<14}{'buckets':>9}{'drift':>8}{'unverif.':>10}{'exempt':>8}",
    ]
    for account, counts in accounts.items():
        lines.append(
            f"  {account:<14}{counts['buckets']:>9}{counts['drift']:>8}"
            f"{counts['unverifiable']:>10}{counts['exempt']:>8}"
            + ("   not fully swept" if counts.get("error") else "")
        )
    return lines


def _describe_entry(entry: dict[str, Any], *, with_account: bool) -> list[str]:
    where = f"{entry['account']}, {entry['region']}" if with_account else entry["region"]
    # A table bucket may share its name with a general purpose bucket: it is not s3://name.
    kind = entry.get("bucketKind")
    other = kind in (BucketKind.TABLE, BucketKind.VECTOR)
    name = f"{kind} bucket {entry['bucket']}" if other else f"s3://{entry['bucket']}"
    lines = ["", f"  {entry['severity']:<7} {name}  ({where})"]
    lines += [f"          {v['code']}: {v['message']}" for v in entry["violations"]]
    if entry["remediation"]:
        lines.append(f"          fix: {entry['remediation']}")
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
