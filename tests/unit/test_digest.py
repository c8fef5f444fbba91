"""The sweep's digest: one message, counts first, most severe first, always within SNS's limit."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

from functions.drift_monitor.domain.alerts import message_body
from functions.drift_monitor.domain.models import (
    BucketRef,
    Code,
    EncryptionRule,
    Finding,
    ObservedEncryption,
    Status,
    Trigger,
    Violation,
)
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.digest import (
    MESSAGE_LIMIT,
    SweepRun,
    build_digest,
    digest_candidates,
    run_of_result,
    summary,
)
from functions.drift_monitor.sweep.engine import SweepResult, Tally
from tests.conftest import ALERT_KEYS

ACCOUNT = "123456789012"
TRIGGER = Trigger(source="sweep", event_time="2026-11-26T06:00:00Z", event_id="e-1")


def finding(name: str, status: Status, *codes: Code, region: str = "eu-west-1") -> Finding:
    bucket = BucketRef(name, ACCOUNT, region)
    observed = None if status is Status.UNVERIFIABLE else ObservedEncryption(bucket, ())
    if Code.ALGORITHM_NOT_ALLOWED in codes:
        observed = ObservedEncryption(bucket, (EncryptionRule("AES256"),))
    violations = tuple(Violation(code, f"{code.value} explained") for code in codes)
    return Finding(bucket, status, observed, violations, TRIGGER)


def run_of(*findings: Finding, complete: bool = True, stopped_after: str | None = None) -> SweepRun:
    tally = Tally(keep=lambda f: f.alerts)
    for item in findings:
        tally.add(item)
    result = SweepResult(ACCOUNT, tally, complete, stopped_after)
    return run_of_result(
        result, Policy(), TRIGGER.to_dict(), "2026-11-26T06:00:01Z", "2026-11-26T06:00:09Z"
    )


MIXED = (
    finding("assets", Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED),
    finding("raw-data", Status.DRIFT, Code.NO_DEFAULT_ENCRYPTION),
    finding("logs", Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED),
    finding("locked", Status.UNVERIFIABLE, Code.ACCESS_DENIED, region="us-east-1"),
    finding("ledger", Status.COMPLIANT),
    finding("sandbox-1", Status.EXEMPT),
    finding("gone", Status.VANISHED),
)


def test_the_document_counts_every_status_and_lists_only_what_alerts() -> None:
    alert = build_digest(run_of(*MIXED), Policy())
    document = alert.document

    assert document["schemaVersion"] == "1"
    assert document["status"] == "DIGEST"
    assert document["account"] == ACCOUNT
    assert document["summary"] == {
        "buckets": 7,
        "compliant": 1,
        "drift": 3,
        "unverifiable": 1,
        "exempt": 1,
        "vanished": 1,
    }
    assert document["violationCounts"] == {
        "ACCESS_DENIED": 1,
        "ALGORITHM_NOT_ALLOWED": 2,
        "NO_DEFAULT_ENCRYPTION": 1,
    }
    assert [entry["bucket"] for entry in document["findings"]] == [
        "raw-data",  # HIGH first
        "assets",  # then MEDIUM by name
        "logs",
        "locked",  # LOW last
    ]
    assert document["listed"] == 4 and document["truncated"] is False
    assert document["run"] == {
        "startedAt": "2026-11-26T06:00:01Z",
        "finishedAt": "2026-11-26T06:00:09Z",
        "complete": True,
        "stoppedAfter": None,
        "failedItems": 0,
    }
    assert document["accounts"] == {ACCOUNT: {**document["summary"], "error": None}}
    assert (document["unreachableAccounts"], document["report"]) == (0, None)
    assert document["trigger"]["source"] == "sweep"
    assert document["policy"] == Policy().to_dict()


def test_each_listed_entry_is_the_alert_document_without_the_repeated_policy() -> None:
    document = build_digest(run_of(*MIXED), Policy()).document

    for entry in document["findings"]:
        assert set(entry) == ALERT_KEYS - {"schemaVersion", "policy"} | {"newSinceLastSweep"}
    raw = document["findings"][0]
    assert raw["severity"] == "HIGH"
    assert raw["observed"] == {"rules": []}
    assert raw["remediation"].startswith("aws s3api put-bucket-encryption --bucket raw-data")
    locked = document["findings"][-1]
    assert (locked["severity"], locked["observed"], locked["remediation"]) == ("LOW", None, None)


def test_severity_subject_and_attributes() -> None:
    alert = build_digest(run_of(*MIXED), Policy())

    assert alert.document["severity"] == "HIGH"
    assert alert.subject == "[DIGEST] 3 drifted, 1 unverifiable of 7 buckets (123456789012)"
    assert alert.attributes == {"status": "DIGEST", "severity": "HIGH", "account": ACCOUNT}
    medium = build_digest(run_of(MIXED[0]), Policy())
    assert medium.document["severity"] == "MEDIUM"


def test_the_email_gives_counts_by_violation_then_the_buckets() -> None:
    email = build_digest(run_of(*MIXED), Policy()).email
    lines = email.splitlines()

    assert lines[0] == (
        "Encryption sweep of account 123456789012: 3 of 7 buckets drift from your policy, "
        "1 could not be verified."
    )
    per_violation = lines.index("Buckets per violation:")
    drift = lines.index("Drift (3 listed), most severe first:")
    unverifiable = lines.index("Could not be verified (1 listed), most severe first:")
    assert per_violation < drift < unverifiable
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[per_violation + 1 : drift]
              if line.strip()}  # fmt: skip
    assert counts == {"ACCESS_DENIED": 1, "ALGORITHM_NOT_ALLOWED": 2, "NO_DEFAULT_ENCRYPTION": 1}
    assert "  HIGH    s3://raw-data  (eu-west-1)" in lines
    assert "          NO_DEFAULT_ENCRYPTION: NO_DEFAULT_ENCRYPTION explained" in lines
    assert any(line.startswith("          fix: aws s3api put-bucket-encryption") for line in lines)
    assert "sandbox-1" not in email  # exempt: counted, not listed
    assert "INCOMPLETE" not in email


def test_the_digest_names_where_events_missed_what_the_sweep_found() -> None:
    # Given a run whose sweep found three verdicts no event had reported, in two paths
    changes = {"newDrift": 3, f"missed:{ACCOUNT}/eu-west-1": 2, f"missed:{ACCOUNT}/us-east-1": 1}
    run = replace(run_of(*MIXED), changes=changes)

    # When its digest is built
    alert = build_digest(run, Policy())

    # Then the document counts them per account and region, with what it usually means
    missed = alert.document["changes"]["missedByEvents"]
    assert missed["total"] == 3
    assert missed["byAccountRegion"] == {f"{ACCOUNT}/eu-west-1": 2, f"{ACCOUNT}/us-east-1": 1}
    assert "no trail" in missed["meaning"] and "doctor" in missed["meaning"]
    # And the email says so, one line per path
    assert "Missed by events: 3; the sweep found these verdicts changed" in alert.email
    assert f"  {ACCOUNT}/eu-west-1  2" in alert.email.splitlines()


def test_the_digest_lists_silent_event_paths_first_thing() -> None:
    silent = [{"account": ACCOUNT, "region": "us-east-1", "lastBeat": "2026-11-26T05:00:00Z"}]
    run = replace(run_of(finding("ledger", Status.COMPLIANT)), silent_paths=silent)

    alert = build_digest(run, Policy())

    assert alert.document["silentPaths"] == silent
    assert alert.subject.endswith(", 1 silent path")
    lines = alert.email.splitlines()
    assert f"  {ACCOUNT}/us-east-1  last beat 2026-11-26T05:00:00Z" in lines
    assert any(line.startswith("SILENT: no heartbeat for two intervals") for line in lines)


def test_nothing_missed_says_nothing() -> None:
    alert = build_digest(replace(run_of(*MIXED), changes={"newDrift": 1}), Policy())

    assert alert.document["changes"]["missedByEvents"]["total"] == 0
    assert "Missed by events" not in alert.email


def test_an_incomplete_run_says_what_is_missing() -> None:
    alert = build_digest(run_of(*MIXED[:2], complete=False, stopped_after="raw-data"), Policy())

    assert alert.document["run"]["complete"] is False
    assert alert.document["run"]["failedItems"] == 1
    assert "(incomplete)" in alert.subject
    assert "INCOMPLETE: 1 work item (an account's listing page each) failed" in alert.email


def test_a_compliant_run_digest_lists_nothing() -> None:
    alert = build_digest(run_of(finding("ledger", Status.COMPLIANT)), Policy())

    assert alert.document["findings"] == []
    assert alert.document["severity"] == "LOW"
    assert "Drift (" not in alert.email


def test_a_huge_account_is_cut_to_one_message_most_severe_kept() -> None:
    # Given far more drifted buckets than one SNS message can describe
    many = [
        finding(f"medium-{i:05d}", Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED) for i in range(3000)
    ]
    many.append(finding("zz-high", Status.DRIFT, Code.NO_DEFAULT_ENCRYPTION))

    # When the digest is built
    alert = build_digest(run_of(*many), Policy())

    # Then it fits, keeps the most severe, and says how to see the rest
    document = alert.document
    assert len(message_body(alert).encode()) <= MESSAGE_LIMIT
    assert document["truncated"] is True
    assert 0 < document["listed"] < 3001
    assert document["findings"][0]["bucket"] == "zz-high"
    assert document["summary"]["drift"] == 3001  # the counts stay complete
    assert "s3-encryption-monitor scan --only-drift" in alert.email
    assert json.loads(json.loads(message_body(alert))["default"]) == document


def test_subject_stays_within_sns_limits_for_any_account_size() -> None:
    counts = summary(Counter({Status.DRIFT: 10**9, Status.UNVERIFIABLE: 10**9}))
    run = SweepRun(
        account=ACCOUNT,
        trigger=TRIGGER.to_dict(),
        started_at="2026-11-26T06:00:00Z",
        finished_at="2026-11-26T06:00:09Z",
        counts=counts,
        violation_counts={},
        entries=[],
        failed_items=3,
        accounts={f"{n:012d}": {**counts, "error": "refused"} for n in range(3)},
    )

    subject = build_digest(run, Policy()).subject

    assert len(subject) <= 100
    assert all(" " <= char <= "~" for char in subject)


def organization_run(*findings: Finding, errors: dict[str, str] | None = None) -> SweepRun:
    """A run over several accounts, as the worker that finishes it assembles it."""
    accounts: dict[str, dict[str, object]] = {}
    for account in sorted({f.bucket.account for f in findings} | set(errors or {})):
        mine = Counter(f.status for f in findings if f.bucket.account == account)
        accounts[account] = {**summary(mine), "error": (errors or {}).get(account)}
    everything = Counter(f.status for f in findings)
    return SweepRun(
        account=ACCOUNT,
        trigger=TRIGGER.to_dict(),
        started_at="2026-11-26T06:00:01Z",
        finished_at="2026-11-26T06:02:09Z",
        counts=summary(everything),
        violation_counts={},
        entries=digest_candidates(list(findings), Policy(), 200),
        accounts=accounts,
        report={"uri": "s3://reports/runs/r1/", "manifest": "s3://reports/runs/r1/manifest.json"},
    )


def in_account(account: str, name: str, status: Status, *codes: Code) -> Finding:
    base = finding(name, status, *codes)
    return Finding(BucketRef(name, account, "us-east-1"), status, None, base.violations, TRIGGER)


def test_an_organization_digest_counts_each_account_and_names_the_report() -> None:
    # Given a run over three accounts, one of which could not be entered
    run = organization_run(
        in_account("111111111111", "a-raw", Status.DRIFT, Code.NO_DEFAULT_ENCRYPTION),
        in_account("111111111111", "a-ok", Status.COMPLIANT),
        in_account("222222222222", "b-assets", Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED),
        errors={"333333333333": "could not assume arn:aws:iam::333333333333:role/Reader"},
    )

    # When its digest is built
    alert = build_digest(run, Policy())

    # Then each account has its counts, the unreachable one its reason, and the report its URI
    document = alert.document
    assert document["accounts"]["111111111111"]["drift"] == 1
    assert document["accounts"]["111111111111"]["compliant"] == 1
    assert document["accounts"]["222222222222"]["drift"] == 1
    assert document["accounts"]["333333333333"]["error"].startswith("could not assume")
    assert document["unreachableAccounts"] == 1
    assert document["report"]["uri"] == "s3://reports/runs/r1/"
    assert alert.subject == (
        "[DIGEST] 2 drifted, 0 unverifiable of 3 buckets in 3 accounts, 1 unreachable"
    )
    lines = alert.email.splitlines()
    assert lines[0].startswith("Encryption sweep of 3 accounts: 2 of 3 buckets drift")
    assert "Full report:    s3://reports/runs/r1/ (JSON Lines and CSV)" in lines
    assert "  333333333333  could not assume arn:aws:iam::333333333333:role/Reader" in lines
    assert "  HIGH    s3://a-raw  (111111111111, us-east-1)" in lines


def test_a_huge_organization_lists_only_the_accounts_worth_reading() -> None:
    # Given 5,000 accounts, all compliant but one
    findings = [in_account(f"{n:012d}", f"b-{n}", Status.COMPLIANT) for n in range(1, 5000)]
    findings.append(in_account("999999999999", "bad", Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED))

    alert = build_digest(organization_run(*findings), Policy())

    assert len(message_body(alert).encode()) <= MESSAGE_LIMIT
    assert list(alert.document["accounts"]) == ["999999999999"]
    assert alert.document["accountsTruncated"] is True
    assert alert.document["summary"]["buckets"] == 5000
