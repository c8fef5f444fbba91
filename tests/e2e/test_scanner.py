"""The installed `s3-encryption-monitor scan` command against moto server, as a user runs it."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from functions.drift_monitor.domain.policy import Policy
from local.demo_account import DEMO_BUCKETS, DEMO_POLICY, DemoBucket, populate
from local.emulator import (
    Emulator,
    create_organization,
    member_admin,
    moto_server,
    role_trusting_the_manager,
)
from tests.conftest import ALERT_KEYS, REPO

pytestmark = pytest.mark.e2e

SCANNER = Path(sys.executable).with_name("s3-encryption-monitor")


@pytest.fixture(scope="module")
def demo_account() -> Iterator[Emulator]:
    with moto_server() as emulator:
        populate(emulator)
        yield emulator


def scan(
    emulator: Emulator | None, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if not SCANNER.exists():
        pytest.fail(f"{SCANNER} is not installed: run `make setup`")
    endpoint = ["--endpoint-url", emulator.endpoint] if emulator else []
    environment = {**os.environ, **(emulator.environment() if emulator else {}), **(env or {})}
    return subprocess.run(
        [str(SCANNER), "scan", *endpoint, *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=120,
    )


def scan_json(emulator: Emulator, *args: str) -> tuple[int, dict[str, Any]]:
    result = scan(emulator, "--format", "json", *args)
    return result.returncode, json.loads(result.stdout)


def by_bucket(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "buckets": {entry["bucket"]: entry for entry in document["buckets"]}}


def test_table_lists_every_bucket_with_its_verdict_and_exits_1_on_drift(
    demo_account: Emulator,
) -> None:
    result = scan(demo_account, "--policy", str(DEMO_POLICY))

    assert result.returncode == 1, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "DRIFT" in rows["analytics-raw"] and "NO_DEFAULT_ENCRYPTION" in rows["analytics-raw"]
    assert "COMPLIANT" in rows["payments-ledger"]
    assert "EXEMPT" in rows["sandbox-alice"]
    assert "us-west-2" in rows["legacy-reports"]
    assert "10 buckets: 2 compliant, 6 drift, 0 unverifiable, 2 exempt." in result.stdout
    assert result.stderr == ""  # no progress bar when not on a terminal


def test_json_is_one_document_of_alert_shaped_entries(demo_account: Emulator) -> None:
    code, document = scan_json(demo_account, "--policy", str(DEMO_POLICY))

    assert code == 1
    assert document["schemaVersion"] == "1"
    counts = {
        "buckets": 10,
        "compliant": 2,
        "drift": 6,
        "unverifiable": 0,
        "exempt": 2,
        "vanished": 0,
    }
    assert document["summary"] == {
        **counts,
        "accounts": {"123456789012": {**counts, "error": None}},
    }
    assert len(document["buckets"]) == 10
    for entry in document["buckets"]:
        assert set(entry) == ALERT_KEYS
        assert entry["trigger"]["source"] == "scan"
        assert entry["status"] in {"COMPLIANT", "DRIFT", "UNVERIFIABLE", "EXEMPT"}
        # the policy in force: the file's fields, and the defaults of those it leaves out
        assert entry["policy"] == Policy.from_json(DEMO_POLICY.read_text()).to_dict()
    by_name = {entry["bucket"]: entry for entry in document["buckets"]}
    assert by_name["marketing-assets"]["remediation"].startswith(
        "aws s3api put-bucket-encryption --bucket marketing-assets"
    )
    assert by_name["payments-ledger"]["severity"] is None


def test_exceptions_report_exempt_buckets_and_expired_ones_drift_naming_them(
    demo_account: Emulator, tmp_path: Path
) -> None:
    """§15 through the scanner: an exception in force makes a drift EXEMPT with the exception
    in its document; one that ended leaves it drifting, named; one violation of two accepted
    leaves the other alerting."""
    today = date.today()
    policy = json.loads(DEMO_POLICY.read_text())
    policy["exceptions"] = [
        {"buckets": ["analytics-*"], "allow": ["NO_DEFAULT_ENCRYPTION"], "reason": "ingest v1",
         "owner": "data-eng", "expires": (today + timedelta(days=5)).isoformat()},
        {"buckets": ["arn:aws:s3:::marketing-assets"], "allow": "all", "reason": "campaign",
         "owner": "marketing", "expires": (today - timedelta(days=1)).isoformat()},
        {"buckets": ["partner-*"], "accounts": ["123456789012"], "allow": ["KMS_KEY_NOT_ALLOWED"],
         "reason": "partner key review", "owner": "security", "expires": "2099-12-31"},
    ]  # fmt: skip
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))

    code, document = scan_json(demo_account, "--policy", str(path))

    buckets = by_bucket(document)["buckets"]
    raw = buckets["analytics-raw"]
    assert (raw["status"], raw["exception"]["source"], raw["exception"]["owner"]) == (
        "EXEMPT",
        "exceptions[0]",
        "data-eng",
    )
    marketing = buckets["marketing-assets"]
    assert (marketing["status"], marketing["exception"]["expired"]) == ("DRIFT", True)
    partner = buckets["partner-exchange"]
    assert partner["status"] == "DRIFT"
    assert [v["code"] for v in partner["violations"]] == ["KMS_KEY_CROSS_ACCOUNT"]
    assert [v["code"] for v in partner["exemptViolations"]] == ["KMS_KEY_NOT_ALLOWED"]
    assert document["summary"]["exempt"] == 3
    assert code == 1


def test_only_drift_lists_drift_but_counts_everything(demo_account: Emulator) -> None:
    code, document = scan_json(demo_account, "--policy", str(DEMO_POLICY), "--only-drift")

    assert code == 1
    assert {entry["status"] for entry in document["buckets"]} == {"DRIFT"}
    assert len(document["buckets"]) == 6
    assert document["summary"]["buckets"] == 10


def test_default_policy_applies_without_a_policy_file(demo_account: Emulator) -> None:
    code, document = scan_json(demo_account)

    assert code == 1
    assert document["buckets"][0]["policy"]["allowedKmsKeys"] == []
    # with any key allowed, only the SSE-S3 and unencrypted buckets drift (sandbox-alice too:
    # the default policy exempts no names)
    drifted = {e["bucket"] for e in document["buckets"] if e["status"] == "DRIFT"}
    assert drifted == {"analytics-raw", "marketing-assets", "sandbox-alice", "partner-exchange"}


def test_a_compliant_account_exits_0() -> None:
    with moto_server() as emulator:
        populate(emulator, (DemoBucket("ledger", algorithm="aws:kms"),))

        result = scan(emulator)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 buckets: 1 compliant, 0 drift" in result.stdout


def test_progress_bar_on_a_terminal(demo_account: Emulator) -> None:
    controller, terminal = pty.openpty()
    shown = bytearray()

    def read_terminal() -> None:
        # Read while the scanner runs: a full pty buffer would block its writes to stderr.
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO once the scanner has exited and closed its end
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    process = subprocess.Popen(
        [str(SCANNER), "scan", "--endpoint-url", demo_account.endpoint, "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, **demo_account.environment(), "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(terminal)
    stdout, _ = process.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(controller)

    assert b"Scanning buckets" in shown
    assert json.loads(stdout)["summary"]["buckets"] == 10  # stdout stays clean JSON


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "yaml"], "Invalid value for '--format'"),
        (["--concurrency", "0"], "Invalid value for '--concurrency'"),
        (["--policy", "/nonexistent/policy.json"], "does not exist"),
        (["--bogus"], "No such option '--bogus'"),
        (["--accounts", "1234"], "Invalid value for --accounts: '1234' is not a 12-digit"),
        (["--regions", "moon"], "Invalid value for --regions: 'moon' is not a region name"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = scan(None, *args)

    assert result.returncode == 2
    assert message in result.stderr


def test_an_invalid_policy_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"allowedAlgorithms": ["aws:kms"], "requireBucketKeys": True}))

    result = scan(None, "--policy", str(policy))

    assert result.returncode == 2
    assert f"--policy {policy}:" in result.stderr
    assert "requireBucketKeys" in result.stderr


def test_an_exception_that_cannot_match_a_bucket_exits_2_naming_it(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    exception = {"buckets": ["logs/2026/*"], "allow": "all", "reason": "r", "owner": "o",
                 "expires": "2027-01-31"}  # fmt: skip
    policy.write_text(json.dumps({"exceptions": [exception]}))

    result = scan(None, "--policy", str(policy))

    assert result.returncode == 2
    assert "exceptions[0].buckets[0]" in result.stderr
    assert "cannot match a bucket name" in result.stderr


def test_a_policy_file_that_is_not_text_exits_2(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_bytes(b"\xff\xfe\x00{")

    result = scan(None, "--policy", str(policy))

    assert result.returncode == 2
    assert f"--policy {policy}: cannot read it" in result.stderr


def test_an_unknown_profile_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-1\n")

    result = scan(None, "--profile", "nope", env={"AWS_CONFIG_FILE": str(config)})

    assert result.returncode == 2
    assert "--profile" in result.stderr and "nope" in result.stderr


def test_no_credentials_exits_2_saying_what_to_configure(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    result = subprocess.run(
        [str(SCANNER), "scan", "--endpoint-url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=60,
    )

    assert result.returncode == 2
    assert "no AWS credentials found" in result.stderr


def test_an_unreachable_endpoint_exits_2() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    result = scan(None, "--endpoint-url", "http://127.0.0.1:9")

    assert result.returncode == 2
    assert "cannot reach http://127.0.0.1:9" in result.stderr


def make_scan(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What `make scan ARGS="--format json"` runs."""
    return subprocess.run(
        [sys.executable, "-m", "local.scan", "--format", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=120,
    )


def test_make_scan_with_credentials_scans_the_account_in_the_environment(
    demo_account: Emulator,
) -> None:
    # Credentials and AWS_ENDPOINT_URL in the environment, as a user with a profile would have
    result = make_scan({**os.environ, **demo_account.environment()})

    assert result.returncode == 1, result.stderr
    assert "No AWS credentials" not in result.stderr
    # the built-in policy (no demo policy added): the same verdicts as a plain scan, whose
    # buckets come in the order they were evaluated
    assert by_bucket(json.loads(result.stdout)) == by_bucket(scan_json(demo_account)[1])


def test_make_scan_without_credentials_scans_the_demo_account() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(
        {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    result = make_scan(environment)

    assert result.returncode == 1, result.stderr
    assert "No AWS credentials are configured" in result.stderr
    assert json.loads(result.stdout)["summary"]["drift"] == 6


# -- many accounts ------------------------------------------------------------------------------

READER = "S3EncryptionMonitorReader"


@dataclass(frozen=True)
class Estate:
    emulator: Emulator
    readable: list[str]  # member accounts with the reader role
    closed: str  # a member account without it


@pytest.fixture(scope="module")
def estate() -> Iterator[Estate]:
    with moto_server() as emulator:
        members = create_organization(emulator, ["m0", "m1", "m2"])
        for account in members[:2]:
            role_trusting_the_manager(emulator, account, READER)
        populate(emulator, (DemoBucket("central-ledger", algorithm="aws:kms"),))
        populate(
            member_admin(emulator, members[0]),
            (
                DemoBucket("retail-orders", region="us-east-1", algorithm="AES256"),
                DemoBucket("retail-ledger", algorithm="aws:kms"),
            ),
        )
        populate(
            member_admin(emulator, members[1]),
            (DemoBucket("analytics-data", region="us-west-2", algorithm="aws:kms"),),
        )
        yield Estate(emulator, members[:2], members[2])


def test_the_whole_organization_is_scanned_and_a_closed_account_reported(estate: Estate) -> None:
    retail, analytics = estate.readable

    code, document = scan_json(estate.emulator, "--organization")

    assert code == 1  # retail-orders drifts
    accounts = document["summary"]["accounts"]
    assert set(accounts) == {estate.emulator.account, retail, analytics, estate.closed}
    assert accounts[retail] | {"error": None} == accounts[retail]
    assert (accounts[retail]["drift"], accounts[retail]["compliant"]) == (1, 1)
    assert accounts[analytics]["compliant"] == 1
    assert accounts[estate.closed]["buckets"] == 0
    assert f"arn:aws:iam::{estate.closed}:role/{READER}" in accounts[estate.closed]["error"]
    by_bucket = {entry["bucket"]: entry for entry in document["buckets"]}
    assert (by_bucket["retail-orders"]["account"], by_bucket["retail-orders"]["region"]) == (
        retail,
        "us-east-1",
    )
    assert document["summary"]["buckets"] == sum(a["buckets"] for a in accounts.values())


def test_named_accounts_only_and_exit_0_when_they_comply(estate: Estate) -> None:
    code, document = scan_json(estate.emulator, "--accounts", estate.readable[1])

    assert code == 0
    assert list(document["summary"]["accounts"]) == [estate.readable[1]]
    assert [entry["bucket"] for entry in document["buckets"]] == ["analytics-data"]


def test_an_account_that_cannot_be_entered_exits_2_and_says_so(estate: Estate) -> None:
    result = scan(estate.emulator, "--accounts", f"{estate.closed},{estate.readable[1]}")

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"Account {estate.closed} could not be scanned: AccessDenied" in result.stdout
    assert "1 of 2 accounts not scanned" in result.stdout


def test_regions_narrow_the_buckets_and_the_role_name_is_the_one_assumed(
    estate: Estate,
) -> None:
    code, document = scan_json(
        estate.emulator, "--organization", "--regions", "us-east-1,us-west-2"
    )

    assert code == 1
    assert sorted(entry["bucket"] for entry in document["buckets"]) == [
        "analytics-data",
        "retail-orders",
    ]
    other_role = scan(estate.emulator, "--accounts", estate.readable[0], "--role-name", "Other")
    assert other_role.returncode == 2
    assert f"arn:aws:iam::{estate.readable[0]}:role/Other" in other_role.stdout


def test_organization_needs_the_management_account_or_a_delegated_administrator() -> None:
    with moto_server() as emulator:
        result = scan(emulator, "--organization")

    assert result.returncode == 2
    assert "--organization: Organizations listed no active account" in result.stderr


def test_an_s3_compatible_store_without_other_kinds_lists_each_bucket_once() -> None:
    # A store without S3 Express or S3 Tables (moto as released, MinIO, LocalStack) answers their
    # listings with its general buckets: none may be scanned again as a directory or table bucket
    with moto_server(plain=True) as store:
        populate(store, DEMO_BUCKETS[:3])

        result = scan(store, "--format", "json", "--regions", "eu-west-1")

    document = json.loads(result.stdout)
    names = [entry["bucket"] for entry in document["buckets"]]
    assert sorted(names) == sorted(bucket.name for bucket in DEMO_BUCKETS[:3])
    assert {entry["bucketKind"] for entry in document["buckets"]} == {"general-purpose"}
    assert "are not directory buckets" in result.stderr
