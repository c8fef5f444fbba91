"""Alert content: the JSON document for machines, the email text for people, the SNS subject.

The email is rendered from the JSON document alone, so what a person reads and what a machine
receives can never disagree.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .fix import KEY_PLACEHOLDER, plan_fix
from .lifecycle import RESOLVED, BucketState, fingerprint
from .models import (
    DIRECTORY_BUCKET_SUFFIX,
    BucketKind,
    BucketRef,
    Code,
    Finding,
    Severity,
    Status,
)
from .policy import DSSE_KMS, SSE_KMS, KmsArn, Policy

if TYPE_CHECKING:
    from .events import KeyChange
    from .fix import Remediation

SCHEMA_VERSION = "1"
SUBJECT_LIMIT = 100


@dataclass(frozen=True)
class Alert:
    subject: str
    document: dict[str, Any]
    email: str
    attributes: dict[str, str]

    def message(self) -> str:
        """The ``Message`` of an SNS publish with ``MessageStructure=json``."""
        return message_body(self)


def build_alert(
    finding: Finding,
    policy: Policy,
    *,
    first_detected: str | None = None,
    remediation: Remediation | None = None,
) -> Alert:
    """A DRIFT or UNVERIFIABLE alert; ``first_detected``: when this drift began, if known;
    ``remediation``: what automatic remediation did (dry-run, refused, limited)."""
    document = alert_document(finding, policy)
    document["firstDetected"] = first_detected
    document["autoRemediation"] = None if remediation is None else remediation.to_dict()
    return _alert(document)


def build_notice(
    finding: Finding,
    previous: BucketState,
    policy: Policy,
    drifted_seconds: int | None,
    remediation: Remediation | None = None,
) -> Alert:
    """The one RESOLVED notice for an announced drift that is gone: the bucket is compliant,
    exempt or deleted now, or the monitor remediated it (``remediation``)."""
    document = alert_document(finding, policy)
    document.update(
        status=RESOLVED,
        severity=Severity.INFO.value,
        violations=[],
        remediation=None,
        firstDetected=previous.first_detected,
        resolution={
            "outcome": finding.status.value,
            "detail": finding.detail,
            "driftedSince": previous.first_detected,
            "driftedSeconds": drifted_seconds,
            "previousStatus": previous.status.value,
            "previousViolations": list(previous.violations),
            "remediatedAutomatically": remediation is not None and remediation.verified,
        },
        autoRemediation=None if remediation is None else remediation.to_dict(),
    )
    return _alert(document)


def _alert(document: dict[str, Any]) -> Alert:
    return Alert(
        subject=subject_line(document),
        document=document,
        email=render_email(document),
        attributes={
            "status": document["status"],
            "severity": document["severity"],
            "bucket": document["bucket"],
            "account": document["account"],
        },
    )


def alert_document(finding: Finding, policy: Policy) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "status": finding.status.value,
        "severity": None if finding.severity is None else finding.severity.value,
        "bucket": finding.bucket.name,
        "account": finding.bucket.account,
        "region": finding.bucket.region,
        # §12: general-purpose, directory (S3 Express One Zone) or table (S3 Tables).
        "bucketKind": finding.bucket.kind.value,
        "bucketArn": finding.bucket.arn,
        "trigger": finding.trigger.to_dict(),
        "observed": None if finding.observed is None else finding.observed.to_dict(),
        "violations": [violation.to_dict() for violation in finding.violations],
        "policy": policy.to_dict(),
        "remediation": remediation_command(finding, policy),
        "fingerprint": fingerprint(finding),
        "firstDetected": None,
        # keyChecks: what KMS said about each key the rules name (empty without key checks).
        "keys": [fact.to_dict() for fact in finding.keys],
        # remediation (§12): what it did or would do; null when off or not a drift.
        "autoRemediation": None,
        # §15: the exception in force (EXEMPT, or violations accepted) or the one that expired.
        "exception": None if finding.exemption is None else finding.exemption.to_dict(),
        "exemptViolations": [violation.to_dict() for violation in finding.exempted],
    }


KEY_CHANGE = "KEY_CHANGE"
# The summary names this many buckets; the per-bucket alerts name each.
SUMMARY_BUCKETS = 50


def build_key_summary(
    change: KeyChange, buckets: Sequence[BucketRef], *, alerted: int, resolved: int, queued: bool
) -> Alert:
    """§15: the one summary of a KMS call on a key buckets use: the key, who changed it, how
    many buckets it affects (each has its own alert or notice through the lifecycle)."""
    key = KmsArn.parse(change.key_arn)
    listed = [
        {"bucket": b.name, "account": b.account, "region": b.region, "bucketKind": b.kind.value}
        for b in buckets[:SUMMARY_BUCKETS]
    ]
    severity = (Severity.HIGH if change.disables else Severity.INFO).value
    document: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "status": KEY_CHANGE,
        "severity": severity,
        "key": change.key_arn,
        "account": key.account if key else None,
        "region": key.region if key else None,
        "trigger": change.trigger.to_dict(),
        "affectedBuckets": len(buckets),
        "buckets": listed,
        "bucketsTruncated": len(buckets) > len(listed),
        # Inline: the event function re-read every bucket; queued: through its work queue.
        "reevaluation": "queued" if queued else "inline",
        "alerts": alerted,
        "resolved": resolved,
    }
    actor = change.trigger.actor or "an unknown principal"
    verb = change.trigger.event_name
    names = ", ".join(b["bucket"] for b in listed)
    more = len(buckets) - len(listed)
    lines = [
        f"{verb} by {actor} on KMS key {change.key_arn}: {len(buckets)} "
        f"bucket{'s' if len(buckets) != 1 else ''} use it for default encryption.",
        "",
        f"Key:       {change.key_arn}",
        f"Changed:   {_describe_trigger(change.trigger.to_dict())}",
        f"Severity:  {severity}",
        f"Buckets:   {names}" + (f" and {more} more" if more > 0 else ""),
        "",
        (
            f"Each bucket was read again: {alerted} new alert(s), {resolved} resolved notice(s)."
            if not queued
            else "The buckets are being read again through the work queue; each sends its "
            "own alert or notice."
        ),
    ]
    if change.disables:
        lines += [
            "",
            "While S3 cannot use the key, every upload that relies on these buckets' default "
            "encryption fails. If the change was not intended, undo it (aws kms enable-key / "
            "cancel-key-deletion, or restore the key policy).",
        ]
    lines += ["", "--", "Sent by S3 Encryption Drift Monitor (keyChecks)."]
    short = change.key_arn.rpartition("/")[2][:13]
    subject = printable(
        f"[{KEY_CHANGE}] {verb} on key {short}: {len(buckets)} buckets "
        f"({document['account']}, {document['region']})"
    )[:SUBJECT_LIMIT]
    return Alert(
        subject=subject,
        document=document,
        email="\n".join(lines),
        attributes={
            "status": KEY_CHANGE,
            "severity": severity,
            "account": key.account if key else "unknown",
            "key": change.key_arn,
        },
    )


def subject_line(document: dict[str, Any]) -> str:
    """``[STATUS] s3://bucket (account, region)``, within SNS's 100 printable ASCII characters
    (``table bucket NAME`` for a table bucket, whose name may equal a general purpose one's)."""
    scheme = _SCHEMES.get(document.get("bucketKind") or "", "s3://")
    prefix = f"[{document['status']}] {scheme}"
    suffix = f" ({document['account']}, {document['region']})"
    bucket = printable(document["bucket"])
    room = SUBJECT_LIMIT - len(prefix) - len(suffix)
    if len(bucket) > room:
        bucket = bucket[: max(room - 3, 0)] + "..."
    return printable(prefix + bucket + suffix)[:SUBJECT_LIMIT]


# Table and vector buckets may share a general purpose bucket's name: they are not s3://name.
_SCHEMES = {BucketKind.TABLE.value: "table bucket ", BucketKind.VECTOR.value: "vector bucket "}


def printable(text: str) -> str:
    return "".join(char if " " <= char <= "~" else "?" for char in str(text))


def message_body(alert: Alert) -> str:
    """The ``Message`` of an SNS publish with ``MessageStructure=json``."""
    return json.dumps({"default": json.dumps(alert.document), "email": alert.email})


def render_email(document: dict[str, Any]) -> str:
    if document["status"] == RESOLVED:
        return render_notice_email(document)
    bucket = document["bucket"]
    violations = document["violations"]
    codes = [v["code"] for v in violations]
    if Code.EVENT_PATH_SILENT in codes:
        headline = (
            f"The S3 Encryption Drift Monitor stopped hearing from account {document['account']}, "
            f"region {document['region']}: no heartbeat for two intervals."
        )
    elif document["status"] == Status.UNVERIFIABLE:
        why = {
            "ACCESS_DENIED": "S3 denied the read",
            "BUCKET_INACTIVE": "the directory bucket is inactive",
        }.get(violations[0]["code"] if violations else "", "S3 kept failing to answer")
        headline = (
            f"The S3 Encryption Drift Monitor could not verify the default encryption of bucket "
            f"{bucket}: {why}."
        )
    else:
        headline = (
            f"S3 bucket {bucket} no longer meets your encryption policy "
            f"({len(violations)} violation{'s' if len(violations) != 1 else ''}: "
            f"{', '.join(codes)})."
        )
    lines = [
        *_heading(headline, document),
        f"Trigger:   {_describe_trigger(document['trigger'])}",
        *([f"Since:     {document['firstDetected']}"] if document.get("firstDetected") else []),
        *(
            []  # the heartbeat bucket is never read: its events are what matters
            if Code.EVENT_PATH_SILENT in codes
            else [
                "",
                "Observed default encryption:",
                *_describe_observed(document["observed"], document.get("bucketKind")),
            ]
        ),
        "",
        "What is wrong:",
        *[f"  - {v['code']}: {v['message']}" for v in violations],
        *describe_exception(document),
    ]
    lines += _describe_auto_remediation(document.get("autoRemediation"))
    if document["remediation"]:
        fix = document["remediation"].splitlines()
        lines += ["", "To fix it, run:", *(f"  {line}" for line in fix)]
        if KEY_PLACEHOLDER in document["remediation"]:
            lines.append(f"  (replace {KEY_PLACEHOLDER} with a key your policy allows)")
    lines += policy_and_footer(document["policy"], "S3 Encryption Drift Monitor", "alert")
    return "\n".join(lines)


def render_notice_email(document: dict[str, Any]) -> str:
    resolution = document["resolution"]
    bucket = document["bucket"]
    lasted = _duration(resolution["driftedSeconds"])
    after = f" after {lasted}" if lasted else ""
    headlines = {
        Status.COMPLIANT.value: f"S3 bucket {bucket} meets your encryption policy again{after}.",
        Status.EXEMPT.value: (
            f"S3 bucket {bucket} is now exempt from your encryption policy "
            f"({resolution['detail']}); its open alert is closed{after}."
        ),
        Status.VANISHED.value: f"S3 bucket {bucket} was deleted; its open alert is closed{after}.",
    }
    headline = headlines[resolution["outcome"]]
    silent_path = Code.EVENT_PATH_SILENT in resolution["previousViolations"]
    if silent_path:
        headline = (
            f"Events from account {document['account']}, region {document['region']} reach the "
            f"S3 Encryption Drift Monitor again: its heartbeat is back{after}."
        )
    if resolution.get("remediatedAutomatically"):
        headline = (
            f"S3 bucket {bucket} drifted from your encryption policy and was remediated "
            "automatically: the monitor applied the fix and read the bucket again."
        )
    previous = ", ".join(resolution["previousViolations"]) or "none"
    lines = [
        *_heading(headline, document),
        f"Resolved:  {_describe_trigger(document['trigger'])}",
        f"{'Silent:' if silent_path else 'Drifted:':<11}"
        f"since {resolution['driftedSince'] or 'an unknown time'}"
        + (f" ({lasted})" if lasted else ""),
        f"Was:       {resolution['previousStatus']} ({previous})",
    ]
    if document["observed"] is not None:
        lines += [
            "",
            "Default encryption now:",
            *_describe_observed(document["observed"], document.get("bucketKind")),
        ]
    lines += _describe_auto_remediation(document.get("autoRemediation"))
    lines += policy_and_footer(document["policy"], "S3 Encryption Drift Monitor", "notice")
    return "\n".join(lines)


def describe_exception(document: dict[str, Any]) -> list[str]:
    """What an exception says about an alert: the one that expired (so the violations it
    accepted alert again), or the one that still accepts some of them."""
    exception = document.get("exception")
    if not exception:
        return []
    who = f"owner {exception['owner'] or 'not named'}"
    why = f"; reason: {exception['reason']}" if exception["reason"] else ""
    if exception["expired"]:
        problem = f" ({exception['problem']})" if exception.get("problem") else ""
        return [
            "",
            f"Exception expired: {exception['source']} ({who}{why}) ended on "
            f"{exception['expires']}{problem}; what it accepted alerts again. Renew it with a "
            "new end date, or fix the bucket.",
        ]
    accepted = ", ".join(v["code"] for v in document.get("exemptViolations") or [])
    until = f" until {exception['expires']}" if exception["expires"] else ""
    return [
        "",
        f"Accepted by {exception['source']}{until} ({who}{why})"
        + (f": {accepted}" if accepted else ""),
    ]


def _describe_auto_remediation(done: dict[str, Any] | None) -> list[str]:
    if not done:
        return []
    configuration = json.dumps(done["configuration"], separators=(",", ":"))
    if done["applied"]:
        outcome = "applied" + ("" if done["verified"] else f" ({done['reason']})")
        return ["", f"Automatic remediation ({done['mode']}): {outcome}:", f"  {configuration}"]
    lines = ["", f"Automatic remediation ({done['mode']}): {done['reason']}."]
    if done["configuration"] is not None:
        lines.append(f"  It would apply: {configuration}")
    return lines


def _heading(headline: str, document: dict[str, Any]) -> list[str]:
    """How every single-bucket email begins: what happened, and to which bucket."""
    return [
        headline,
        "",
        f"Bucket:    s3://{document['bucket']}",
        *_kind_line(document),
        f"Account:   {document['account']}",
        f"Region:    {document['region']}",
        f"Severity:  {document['severity']}",
    ]


def _kind_line(document: dict[str, Any]) -> list[str]:
    """Only for the kinds people may not expect: a general purpose bucket is the default."""
    kind = BucketKind(document.get("bucketKind") or BucketKind.GENERAL_PURPOSE)
    if kind is BucketKind.GENERAL_PURPOSE:
        return []
    return [f"Kind:      {kind.label} {document['bucketArn']}"]


def _duration(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second")]
    shown = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 seconds"


def policy_and_footer(policy: dict[str, Any], sender: str, what: str) -> list[str]:
    """How every email ends: the policy it was judged by, and where to get the same as JSON."""
    return [
        "",
        "Policy in force:",
        f"  {json.dumps(policy, sort_keys=True)}",
        "",
        "--",
        f"Sent by {sender}. Subscribe an SQS queue, Lambda function or HTTPS endpoint to this "
        f"topic for the same {what} as JSON (schemaVersion {SCHEMA_VERSION}).",
    ]


def _describe_trigger(trigger: dict[str, Any]) -> str:
    if trigger["source"] == "heartbeat":
        return f"the heartbeat's watchdog at {trigger['eventTime']}"
    if trigger["source"] != "cloudtrail":
        return f"{trigger['source']} of all buckets"
    who = trigger["actor"] or "an unknown principal"
    where = f" from {trigger['sourceIp']}" if trigger["sourceIp"] else ""
    return (
        f"{trigger['eventName']} by {who}{where} at {trigger['eventTime']} "
        f"(CloudTrail event {trigger['eventId']})"
    )


def _describe_observed(observed: dict[str, Any] | None, kind: str | None) -> list[str]:
    """Bucket keys and SSE-C blocking are options of general purpose buckets only."""
    options = kind in (None, BucketKind.GENERAL_PURPOSE)
    if observed is None:
        return ["  unknown (the configuration could not be read)"]
    if not observed["rules"]:
        return ["  none (no default encryption configuration)"]
    described = []
    for index, rule in enumerate(observed["rules"], start=1):
        parts = [rule["algorithm"] or "(no algorithm)"]
        if rule["algorithm"] in (SSE_KMS, DSSE_KMS):
            parts.append(f"key {rule['kmsKeyId'] or 'aws/s3 (AWS managed)'}")
        if options and rule["algorithm"] == SSE_KMS:
            parts.append(f"bucket key {'on' if rule['bucketKeyEnabled'] else 'off'}")
        if options:
            blocked = rule["blockedEncryptionTypes"]
            parts.append(f"blocked uploads: {', '.join(blocked) if blocked else 'none'}")
        described.append(f"  Rule {index}: " + "; ".join(parts))
    return described


def remediation_command(finding: Finding, policy: Policy) -> str | None:
    """The ``put-bucket-encryption`` call that makes the bucket compliant, for DRIFT findings
    (``put-table-bucket-encryption`` for a table bucket); for a directory bucket whose key would
    change, the same call for a new bucket, with what to do around it."""
    fix = plan_fix(finding, policy)
    if fix is None:
        return None
    configuration = json.dumps(fix.configuration, separators=(",", ":"))
    bucket = finding.bucket
    if bucket.kind is BucketKind.TABLE:
        command = shlex.join(
            [
                "aws",
                "s3tables",
                "put-table-bucket-encryption",
                "--table-bucket-arn",
                bucket.arn,
                "--region",
                bucket.region,
                "--encryption-configuration",
                configuration,
            ]
        )
        if fix.rule.algorithm != SSE_KMS:
            return command
        return (
            f"{command}\n# First allow the S3 Tables maintenance principal "
            "(maintenance.s3tables.amazonaws.com) to use the key in its key policy: without it, "
            "table maintenance stops (S3 User Guide, 'Using SSE-KMS in table buckets')."
        )
    if bucket.kind is BucketKind.VECTOR:
        create = shlex.join(
            [
                "aws",
                "s3vectors",
                "create-vector-bucket",
                "--vector-bucket-name",
                "<NEW-NAME>",
                "--region",
                bucket.region,
                "--encryption-configuration",
                configuration,
            ]
        )
        return (
            "# A vector bucket's encryption can't be changed after it is created (S3 User "
            "Guide, 'Data protection and encryption in S3 Vectors'): create a new vector bucket\n"
            f"{create}\n# then its indexes (create-index, without an encryption configuration "
            f"of their own), put the vectors again, and delete {bucket.arn}."
        )
    name = bucket.name
    if fix.recreate:
        # The zone is the part of the name before --x-s3: the new bucket goes in the same zone.
        zone = name.removesuffix(DIRECTORY_BUCKET_SUFFIX).rpartition("--")[2]
        name = f"<NEW-NAME>--{zone}{DIRECTORY_BUCKET_SUFFIX}"
    # A directory bucket refuses --expected-bucket-owner (501 Not Implemented).
    owner = (
        [] if bucket.kind is BucketKind.DIRECTORY else ["--expected-bucket-owner", bucket.account]
    )
    command = shlex.join(
        [
            "aws",
            "s3api",
            "put-bucket-encryption",
            "--bucket",
            name,
            *owner,
            "--region",
            bucket.region,
            "--server-side-encryption-configuration",
            configuration,
        ]
    )
    if not fix.recreate:
        return command
    return (
        "# A directory bucket keeps its KMS key for its lifetime (S3 User Guide, 'Using SSE-KMS "
        f"in directory buckets'): create a new directory bucket in the same zone, then\n"
        f"{command}\n# copy the objects to it and delete s3://{bucket.name}."
    )
