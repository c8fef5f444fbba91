"""End to end, in an organization on the emulator: member accounts get the synthesized member
templates (as the StackSets would deploy them), their S3 events travel through the member
forwarding rule and the central bus, the central function reads their buckets through the reader
role, and the sweep fans out over every account and region."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.demo_account import DemoBucket
from local.emulator import Emulator, create_organization, moto_server
from local.lambda_runtime import LambdaContainer
from local.pipeline import LocalPipeline
from local.template import SynthesizedMonitor
from tests.e2e.conftest import SynthFactory

pytestmark = pytest.mark.e2e

ORGANIZATION_ID = "o-e2eorgtest"
REGIONS = ("eu-west-1", "us-east-1", "us-west-2")
# keyChecks: §15's key health across the organization (KMS events forwarded by members).
POLICY = {"allowedAlgorithms": ["aws:kms", "aws:kms:dsse"], "keyChecks": True}
READER = "S3EncryptionMonitorReader"


SYNTH_CONTEXT = {
    "organizationId": ORGANIZATION_ID,
    "memberTargets": "r-e2et",
    "regions": ",".join(REGIONS),
}


@pytest.fixture(scope="module")
def monitor(synth: SynthFactory) -> SynthesizedMonitor:
    return synth(POLICY, **SYNTH_CONTEXT)


@dataclass
class Organization:
    emulator: Emulator
    pipeline: LocalPipeline
    members: list[str]
    function: LambdaContainer

    @property
    def central(self) -> str:
        return self.emulator.account


def organization_of(monitor: SynthesizedMonitor, emulator: Emulator, members: int) -> Organization:
    accounts = create_organization(emulator, [f"m{n}" for n in range(members)])
    pipeline = LocalPipeline(monitor, emulator)
    for account in accounts:
        pipeline.deploy_member(account)
    function = pipeline.start_function()
    assert function.init_error is None, function.init_error
    return Organization(emulator, pipeline, accounts, function)


@pytest.fixture(scope="module")
def org(monitor: SynthesizedMonitor) -> Iterator[Organization]:
    with moto_server(organization_id=ORGANIZATION_ID) as emulator:
        yield organization_of(monitor, emulator, members=2)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def encrypt_new_bucket(
    org: Organization, prefix: str, region: str, account: str | None, algorithm: str
) -> tuple[str, list[Any]]:
    """A bucket that existed before (no event), then one PutBucketEncryption in ``account`` and
    ``region``; returns its name and the invocations the events routed to the function."""
    s3 = org.pipeline.s3_in(region, account)
    bucket = unique(prefix)
    s3.create_bucket(bucket, record=False)
    s3.put_encryption(bucket, algorithm, bucket_key=True)
    return bucket, org.pipeline.deliver(org.function)


def test_a_member_bucket_drifting_in_another_region_alerts_naming_its_account(
    org: Organization,
) -> None:
    # Given a bucket of a member account in us-east-1 (not the monitor's home region)
    member = org.members[0]

    # When it is set to SSE-S3 there
    bucket, invocations = encrypt_new_bucket(org, "orders", "us-east-1", member, "AES256")

    # Then the event came through the member's forwarding rule and the central bus, the bucket
    # was read in its account through the reader role, and the alert names that account
    assert [i.response["status"] for i in invocations] == ["DRIFT"]
    (alert,) = org.pipeline.received_alerts()
    document = alert.document
    assert (document["account"], document["region"], document["bucket"]) == (
        member,
        "us-east-1",
        bucket,
    )
    assert alert.attributes["account"] == member
    assert alert.subject == f"[DRIFT] s3://{bucket} ({member}, us-east-1)"
    assert document["observed"]["rules"][0]["algorithm"] == "AES256"  # read, not assumed
    assert f"--expected-bucket-owner {member} --region us-east-1" in document["remediation"]


def test_a_member_s_key_disabled_in_another_region_alerts_its_buckets_there(
    org: Organization,
) -> None:
    """§15 across accounts and regions: the member's KMS event travels through its forwarder
    and the central bus; the key index finds the member's buckets; each is read again through
    the reader role."""
    member = org.members[1]
    kms = org.pipeline.member_session(member).client(
        "kms", region_name="us-west-2", endpoint_url=org.emulator.endpoint
    )
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3 = org.pipeline.s3_in("us-west-2", member)
    buckets = [unique("features"), unique("models")]
    for bucket in buckets:
        s3.create_bucket(bucket, record=False)
        s3.put_encryption(bucket, "aws:kms", key, bucket_key=True)
    assert [i.response["status"] for i in org.pipeline.deliver(org.function)] == ["COMPLIANT"] * 2

    org.pipeline.kms_call("DisableKey", key)
    (invocation,) = org.pipeline.deliver(org.function)

    assert invocation.response["buckets"] == 2
    received = org.pipeline.received_alerts()
    drifts = [a.document for a in received if a.document["status"] == "DRIFT"]
    assert sorted((d["bucket"], d["account"], d["region"]) for d in drifts) == sorted(
        (bucket, member, "us-west-2") for bucket in buckets
    )
    assert all(d["keys"][0]["state"] == "Disabled" for d in drifts)
    (summary,) = [a.document for a in received if a.document["status"] == "KEY_CHANGE"]
    assert (summary["account"], summary["region"], summary["affectedBuckets"]) == (
        member,
        "us-west-2",
        2,
    )
    assert summary["trigger"]["actor"] == f"arn:aws:sts::{member}:assumed-role/PlatformAdmin/alice"


def test_a_member_s_vector_bucket_is_judged_through_the_reader_role(org: Organization) -> None:
    member = org.members[0]
    s3 = org.pipeline.s3_in("eu-west-1", member)
    bucket = unique("vectors")

    s3.create_vector_bucket(bucket)  # SSE-S3: the policy allows only KMS
    (invocation,) = org.pipeline.deliver(org.function)

    assert invocation.response["status"] == "DRIFT"
    (alert,) = org.pipeline.received_alerts()
    assert (alert.document["bucketKind"], alert.document["account"]) == ("vector", member)
    assert alert.document["bucketArn"] == f"arn:aws:s3vectors:eu-west-1:{member}:bucket/{bucket}"


def test_a_compliant_member_bucket_stays_silent(org: Organization) -> None:
    _, invocations = encrypt_new_bucket(org, "ledger", "us-west-2", org.members[1], "aws:kms")

    assert [i.response["status"] for i in invocations] == ["COMPLIANT"]
    assert org.pipeline.received_alerts() == []


def test_a_refused_call_in_a_member_account_is_never_forwarded(org: Organization) -> None:
    s3 = org.pipeline.s3_in("eu-west-1", org.members[0])

    s3.denied_put_encryption(unique("denied"))

    assert org.pipeline.deliver(org.function) == []


def test_a_change_in_another_region_of_the_monitor_s_account_is_forwarded_home(
    org: Organization,
) -> None:
    _, invocations = encrypt_new_bucket(org, "assets", "us-west-2", None, "AES256")

    # once: through the regional forwarder to the home default bus, not also the central bus
    assert [i.response["status"] for i in invocations] == ["DRIFT"]
    (alert,) = org.pipeline.received_alerts()
    assert (alert.document["account"], alert.document["region"]) == (org.central, "us-west-2")


def test_a_member_whose_reader_role_is_gone_is_unverifiable_naming_the_role(
    monitor: SynthesizedMonitor,
) -> None:
    with moto_server(organization_id=ORGANIZATION_ID) as emulator:
        org = organization_of(monitor, emulator, members=1)
        (member,) = org.members
        org.pipeline.delete_reader_role(member)

        _, invocations = encrypt_new_bucket(org, "events", "us-east-1", member, "AES256")

        assert [i.response["status"] for i in invocations] == ["UNVERIFIABLE"]
        (alert,) = org.pipeline.received_alerts()
        (violation,) = alert.document["violations"]
        assert violation["code"] == "ACCESS_DENIED"
        role = f"arn:aws:iam::{member}:role/{READER}"
        assert f"could not assume its reader role {role}" in violation["message"]
        assert (alert.document["severity"], alert.document["observed"]) == ("LOW", None)


def test_a_role_trusting_someone_else_is_refused_too(monitor: SynthesizedMonitor) -> None:
    # The trust policy names the monitor's function roles: another principal of the monitor's
    # account (here the administrator deploying it) may not read the member's buckets.
    with moto_server(organization_id=ORGANIZATION_ID) as emulator:
        org = organization_of(monitor, emulator, members=1)

        refused = emulator.client("sts")
        with pytest.raises(refused.exceptions.ClientError, match="AccessDenied"):
            refused.assume_role(
                RoleArn=f"arn:aws:iam::{org.members[0]}:role/{READER}", RoleSessionName="me"
            )


# -- the organization sweep -----------------------------------------------------------------------


# Per account, per region: one compliant and one drifting bucket, and one exempt in the home region.
def buckets_of(account: str) -> list[DemoBucket]:
    tail = account[-4:]
    made = []
    for region in REGIONS:
        made.append(DemoBucket(f"ok-{tail}-{region}", region=region, algorithm="aws:kms"))
        made.append(DemoBucket(f"sse-s3-{tail}-{region}", region=region, algorithm="AES256"))
    made.append(
        DemoBucket(f"tmp-{tail}", algorithm="AES256", tags={"encryption-monitor:exempt": "true"})
    )
    return made


def test_the_organization_sweep_over_3_accounts_x_3_regions(monitor: SynthesizedMonitor) -> None:
    with moto_server(organization_id=ORGANIZATION_ID) as emulator:
        # Given the monitor's account and two members, each with buckets in three regions
        org = organization_of(monitor, emulator, members=2)
        accounts = [org.central, *org.members]
        for account in accounts:
            for bucket in buckets_of(account):
                s3 = org.pipeline.s3_in(bucket.region, account)
                s3.create_bucket(bucket.name, tags=bucket.tags, record=False)
                s3.put_encryption(bucket.name, str(bucket.algorithm))
        # and a member's table bucket with SSE-S3 in a watched region other than the home one,
        # reachable only through that member's reader role (S3 Tables is not cross-account)
        lake = f"lake-{org.members[0][-4:]}"
        org.pipeline.s3_in("us-east-1", org.members[0]).create_table_bucket(lake, "AES256")

        # When the schedule starts a sweep and the workers take every item
        invocations = org.pipeline.run_sweep()

        # Then two items per account (ListAccounts found them): its page, and its directory and
        # table buckets in the three regions; and exactly one digest
        assert all(i.ok for i in invocations), invocations
        assert invocations[0].response["accounts"] == 3
        assert len(invocations) == 1 + 3 * 2
        (digest,) = org.pipeline.received_alerts()
        document = digest.document
        for account in accounts:
            counts = document["accounts"][account]
            # the monitor's report bucket (SSE-KMS) and its access logs (SSE-S3, tagged exempt)
            extra = 1 if account == org.central else 0
            table = 1 if account == org.members[0] else 0
            assert counts == {
                "buckets": 7 + 2 * extra + table,
                "compliant": 3 + extra,
                "drift": 3 + table,
                "unverifiable": 0,
                "exempt": 1 + extra,
                "vanished": 0,
                "error": None,
            }, account
        assert document["summary"]["drift"] == 10
        assert digest.subject == "[DIGEST] 10 drifted, 0 unverifiable of 24 buckets in 3 accounts"
        (found,) = [e for e in document["findings"] if e["bucket"] == lake]
        assert (found["bucketKind"], found["account"], found["region"]) == (
            "table",
            org.members[0],
            "us-east-1",
        )
        regions = {(e["account"], e["region"]) for e in document["findings"]}
        assert regions == {(account, region) for account in accounts for region in REGIONS}
        # And the full report holds every bucket once, as JSON Lines and CSV, per account
        report = org.pipeline.report_objects()
        prefix = document["report"]["uri"].split("/", 3)[3]
        jsonl = [k for k in report if k.startswith(prefix) and k.endswith(".jsonl")]
        csvs = [k for k in report if k.startswith(prefix) and k.endswith(".csv")]
        assert len(jsonl) == len(csvs) == 3 * 2
        lines = [json.loads(line) for key in jsonl for line in report[key].decode().splitlines()]
        assert len(lines) == 24
        assert len({(line["account"], line["bucket"]) for line in lines}) == 24
        rows = [row for key in csvs for row in csv.DictReader(io.StringIO(report[key].decode()))]
        assert sorted(row["bucket"] for row in rows) == sorted(line["bucket"] for line in lines)
        manifest = json.loads(report[f"{prefix}manifest.json"])
        assert manifest["summary"] == document["summary"]
        assert len(manifest["files"]) == 12


def test_a_member_drift_is_announced_once_whichever_finds_it_first(
    monitor: SynthesizedMonitor,
) -> None:
    with moto_server(organization_id=ORGANIZATION_ID) as emulator:
        org = organization_of(monitor, emulator, members=1)
        (member,) = org.members
        virginia = org.pipeline.s3_in("us-east-1", member)
        # A: drifts through an event, before any sweep
        seen_by_event = unique("orders")
        virginia.create_bucket(seen_by_event, record=False)
        virginia.put_encryption(seen_by_event, "AES256")
        (alert,) = [a for a in _deliver(org) if a.document["bucket"] == seen_by_event]
        # B: drifted with no event reaching the monitor (the sweep finds it first)
        seen_by_sweep = unique("ledger")
        virginia.create_bucket(seen_by_sweep, record=False)
        org.pipeline.member_session(member).client(
            "s3", region_name="us-east-1", endpoint_url=emulator.endpoint
        ).put_bucket_encryption(
            Bucket=seen_by_sweep,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                        "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
                    }
                ]
            },
        )

        # When the sweep runs
        assert all(i.ok for i in org.pipeline.run_sweep())
        (digest,) = org.pipeline.received_alerts()

        # Then its digest lists both, with when each drift began
        entries = {e["bucket"]: e for e in digest.document["findings"]}
        assert entries[seen_by_event]["firstDetected"] == alert.document["firstDetected"]
        assert entries[seen_by_sweep]["firstDetected"] is not None
        assert digest.document["changes"]["openDriftByAge"]["<1d"] == 2
        # And it counts the one no event reported as missed by events, where it happened
        missed = digest.document["changes"]["missedByEvents"]
        assert (missed["total"], missed["byAccountRegion"]) == (1, {f"{member}/us-east-1": 1})

        # And events for the same drifts send nothing more, whichever found them first
        virginia.put_encryption(seen_by_event, "AES256")
        virginia.put_encryption(seen_by_sweep, "AES256")
        invocations = org.pipeline.deliver(org.function)
        assert [i.response["action"] for i in invocations] == ["SUPPRESS", "SUPPRESS"]
        assert org.pipeline.received_alerts() == []

        # When the sweep's drift is fixed, one RESOLVED notice names the member account
        virginia.put_encryption(seen_by_sweep, "aws:kms", bucket_key=True)
        (notice,) = _deliver(org)
        assert (notice.document["status"], notice.document["account"]) == ("RESOLVED", member)
        assert notice.document["bucket"] == seen_by_sweep

        # And the next sweep counts it resolved, the other still open and not new
        assert all(i.ok for i in org.pipeline.run_sweep())
        (second,) = org.pipeline.received_alerts()
        changes = second.document["changes"]
        assert (changes["newDrift"], changes["resolved"]) == (0, 1)
        assert changes["missedByEvents"]["total"] == 0  # an event saw the fix
        entries = {e["bucket"]: e for e in second.document["findings"]}
        assert entries[seen_by_event]["newSinceLastSweep"] is False
        assert seen_by_sweep not in entries


def _deliver(org: Organization) -> list[Any]:
    invocations = org.pipeline.deliver(org.function)
    assert all(i.ok for i in invocations), invocations
    return org.pipeline.received_alerts()
