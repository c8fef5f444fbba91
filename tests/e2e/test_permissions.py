"""IAM enforced, as on AWS (moto with INITIAL_NO_AUTH_ACTION_COUNT): the synthesized roles' actions
are enough, and what a caller may not read is reported UNVERIFIABLE, never as unencrypted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.demo_account import DemoBucket, populate
from local.emulator import Emulator, iam_user, moto_server_with_iam
from local.pipeline import LocalPipeline
from local.template import SynthesizedMonitor
from tests.e2e.conftest import SynthFactory

pytestmark = pytest.mark.e2e

SCANNER = Path(sys.executable).with_name("s3-encryption-monitor")
POLICY = {"allowedAlgorithms": ["aws:kms"], "exemptTag": "team=sandbox"}
S3_READS = {
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketTagging",
    "s3:GetBucketLocation",
    "s3:ListAllMyBuckets",
}


@pytest.fixture(scope="module")
def admin() -> Iterator[Emulator]:
    with moto_server_with_iam() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def monitor(synth: SynthFactory) -> SynthesizedMonitor:
    return synth(POLICY)


def with_actions(actions: list[str], s3_reads_on: str = "arn:aws:s3:::*") -> list[dict[str, Any]]:
    """The actions on any resource, except bucket reads: only on ``s3_reads_on``."""
    reads = [a for a in actions if a in S3_READS and a != "s3:ListAllMyBuckets"]
    others = [a for a in actions if a not in reads]
    statements = [{"Action": others, "Resource": "*"}, {"Action": reads, "Resource": s3_reads_on}]
    return [statement for statement in statements if statement["Action"]]


def credentials(user: Emulator) -> dict[str, str]:
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return {name: user.environment()[name] for name in names}


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- the event function -------------------------------------------------------------------------


def create_bucket_as(
    monitor: SynthesizedMonitor, admin: Emulator, user: Emulator, bucket: str
) -> tuple[list[str], list[Any]]:
    """Creates the bucket (as the administrator) and lets the event function, running as
    ``user``, handle the event; returns the invocations' statuses and the alerts received."""
    pipeline = LocalPipeline(monitor, admin)
    function = pipeline.start_function(credentials(user))
    pipeline.recorded_s3.create_bucket(bucket)
    invocations = pipeline.deliver(function)
    assert all(invocation.ok for invocation in invocations), invocations
    return [i.response["status"] for i in invocations], pipeline.received_alerts()


def test_the_event_function_needs_no_more_than_its_role(
    monitor: SynthesizedMonitor, admin: Emulator
) -> None:
    # Given a user allowed exactly the actions the synthesized role grants
    actions = monitor.role_actions(monitor.function_id)
    assert "s3:GetEncryptionConfiguration" in actions
    user = iam_user(admin, name("event-role"), with_actions(actions))
    bucket = name("open")

    # When a bucket drifts
    statuses, alerts = create_bucket_as(monitor, admin, user, bucket)

    # Then the function read it, read its tags and published, all as that user
    assert statuses == ["DRIFT"]
    (alert,) = alerts
    assert alert.document["bucket"] == bucket


def test_a_bucket_the_event_function_may_not_read_is_unverifiable(
    monitor: SynthesizedMonitor, admin: Emulator
) -> None:
    # Given a role whose bucket reads stop at buckets named open-*
    actions = monitor.role_actions(monitor.function_id)
    user = iam_user(admin, name("event-narrow"), with_actions(actions, "arn:aws:s3:::open-*"))

    # When another bucket changes
    statuses, alerts = create_bucket_as(monitor, admin, user, name("locked"))

    # Then S3's AccessDenied is an UNVERIFIABLE alert naming the permission, not "unencrypted"
    assert statuses == ["UNVERIFIABLE"]
    (alert,) = alerts
    document = alert.document
    assert (document["status"], document["severity"], document["observed"]) == (
        "UNVERIFIABLE",
        "LOW",
        None,
    )
    (violation,) = document["violations"]
    assert violation["code"] == "ACCESS_DENIED"
    assert "AccessDenied on s3:GetEncryptionConfiguration" in violation["message"]


# -- the sweep ----------------------------------------------------------------------------------


def sweep_as(
    monitor: SynthesizedMonitor, admin: Emulator, worker: Emulator
) -> tuple[list[Any], dict[str, Any]]:
    """A whole run: the starter as a user with exactly its role's actions, the worker as
    ``worker``; returns the invocations and the digest."""
    assert monitor.sweep_function_id is not None
    starter = iam_user(
        admin, name("starter"), with_actions(monitor.role_actions(monitor.sweep_function_id))
    )
    pipeline = LocalPipeline(monitor, admin)
    invocations = pipeline.run_sweep(credentials(starter), credentials(worker))
    assert all(invocation.ok for invocation in invocations), invocations
    (digest,) = pipeline.received_alerts()
    return invocations, digest.document


def worker_actions(monitor: SynthesizedMonitor) -> list[str]:
    assert monitor.worker_function_id is not None
    return monitor.role_actions(monitor.worker_function_id)


def test_the_sweep_needs_no_more_than_its_roles(
    monitor: SynthesizedMonitor, admin: Emulator
) -> None:
    actions = worker_actions(monitor)
    assert set(actions) >= S3_READS
    drifted, exempt = name("open-sse-s3"), name("open-sandbox")
    populate(
        admin,
        (
            DemoBucket(drifted, algorithm="AES256"),
            DemoBucket(exempt, algorithm="AES256", tags={"team": "sandbox"}),
        ),
    )

    invocations, digest = sweep_as(
        monitor, admin, iam_user(admin, name("worker"), with_actions(actions))
    )

    # the account's listing page, and its directory and table buckets (listed with the role's
    # s3express and s3tables actions: no listing error)
    assert [i.response.get("batchItemFailures") for i in invocations[1:]] == [[], []]
    assert digest["summary"]["unverifiable"] == 0
    assert {counts["error"] for counts in digest["accounts"].values()} == {None}
    listed = {entry["bucket"] for entry in digest["findings"]}
    assert drifted in listed
    assert exempt not in listed  # found by tag:GetResources, so its exemption held


def test_buckets_the_sweep_may_not_read_are_listed_unverifiable(
    monitor: SynthesizedMonitor, admin: Emulator
) -> None:
    locked, compliant = name("locked"), name("open-kms")
    populate(
        admin, (DemoBucket(locked, algorithm="aws:kms"), DemoBucket(compliant, algorithm="aws:kms"))
    )
    user = iam_user(
        admin, name("worker-narrow"), with_actions(worker_actions(monitor), "arn:aws:s3:::open-*")
    )

    _, digest = sweep_as(monitor, admin, user)

    by_bucket = {entry["bucket"]: entry for entry in digest["findings"]}
    assert by_bucket[locked]["status"] == "UNVERIFIABLE"
    assert by_bucket[locked]["violations"][0]["code"] == "ACCESS_DENIED"
    assert compliant not in by_bucket  # read, compliant, counted only
    assert digest["summary"]["compliant"] >= 1


def test_an_account_the_sweep_may_not_list_is_reported_in_the_digest(
    monitor: SynthesizedMonitor, admin: Emulator
) -> None:
    actions = [a for a in worker_actions(monitor) if a != "s3:ListAllMyBuckets"]
    user = iam_user(admin, name("worker-no-list"), with_actions(actions))

    invocations, digest = sweep_as(monitor, admin, user)

    # Not retried (it cannot succeed): reported, with the permission to grant
    assert len(invocations) == 2
    assert digest["unreachableAccounts"] == 1
    error = digest["accounts"][admin.account]["error"]
    assert "AccessDenied on s3:ListAllMyBuckets" in error
    assert "the sweep worker's role needs s3:ListAllMyBuckets" in error


# -- the scanner --------------------------------------------------------------------------------

SCANNER_ACTIONS = [
    "s3:ListAllMyBuckets",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketTagging",
    "s3:GetBucketLocation",
    "sts:GetCallerIdentity",
]


def scan(user: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCANNER), "scan", "--endpoint-url", user.endpoint, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **user.environment()},
        timeout=120,
    )


def test_the_scanner_with_the_documented_permissions(admin: Emulator) -> None:
    user = iam_user(admin, name("scanner"), with_actions(SCANNER_ACTIONS))

    result = scan(user, "--format", "json")

    assert result.returncode in (0, 1), result.stderr
    assert json.loads(result.stdout)["summary"]["unverifiable"] == 0


def test_the_scanner_reports_what_it_may_not_read_and_exits_2(admin: Emulator) -> None:
    locked = name("locked")
    populate(admin, (DemoBucket(locked, algorithm="aws:kms"),))
    user = iam_user(
        admin, name("scanner-narrow"), with_actions(SCANNER_ACTIONS, "arn:aws:s3:::x-*")
    )

    result = scan(user, "--format", "json")

    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert document["summary"]["drift"] == 0
    (entry,) = [e for e in document["buckets"] if e["bucket"] == locked]
    assert entry["status"] == "UNVERIFIABLE"
    assert entry["violations"][0]["code"] == "ACCESS_DENIED"


def test_the_scanner_without_list_permission_exits_2_naming_it(admin: Emulator) -> None:
    user = iam_user(admin, name("no-list"), [{"Action": "sts:GetCallerIdentity", "Resource": "*"}])

    result = scan(user)

    assert result.returncode == 2
    assert "AccessDenied on s3:ListAllMyBuckets" in result.stderr
    assert "grant s3:ListAllMyBuckets" in result.stderr


def test_the_scanner_with_an_unknown_key_exits_2(admin: Emulator) -> None:
    stranger = admin.as_user("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

    result = scan(stranger)

    assert result.returncode == 2
    assert "GetCallerIdentity failed: InvalidClientTokenId" in result.stderr
