"""Key checks end to end (SPEC §12): the synthesized function, with keyChecks in its policy, asks
moto server's KMS about each bucket's key."""

from __future__ import annotations

import uuid

import pytest

from local.cloudtrail import kms_call_detail
from local.emulator import Emulator
from local.lambda_runtime import Invocation
from local.pipeline import LocalPipeline, ReceivedAlert
from tests.e2e.conftest import SynthFactory

# The event function's own limit (handlers/event.py INLINE_BUCKETS), as the asset deploys it.
INLINE_BUCKETS = 25

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
APPROVED_ALIAS = f"alias/e2e-approved-{uuid.uuid4().hex[:6]}"
# §15: the key the key-health cases disable and enable again (allowed, so its buckets comply).
SHARED_ALIAS = f"alias/e2e-shared-{uuid.uuid4().hex[:6]}"
POLICY = {
    "allowedAlgorithms": ["aws:kms"],
    "allowedKmsKeys": [
        f"arn:aws:kms:eu-west-1:{ACCOUNT}:{APPROVED_ALIAS}",
        f"arn:aws:kms:eu-west-1:{ACCOUNT}:{SHARED_ALIAS}",
    ],
    "keyChecks": True,
}


class Keys:
    def __init__(self, pipeline: LocalPipeline, emulator: Emulator) -> None:
        self.pipeline = pipeline
        self.function = pipeline.start_function()
        assert self.function.init_error is None, self.function.init_error
        self.kms = emulator.client("kms")
        self.approved = self.kms.create_key()["KeyMetadata"]["Arn"]
        self.kms.create_alias(AliasName=APPROVED_ALIAS, TargetKeyId=self.approved)
        self.shared = self.kms.create_key()["KeyMetadata"]["Arn"]
        self.kms.create_alias(AliasName=SHARED_ALIAS, TargetKeyId=self.shared)

    def encrypt_with(self, key: str) -> tuple[dict[str, object], list[dict[str, object]]]:
        bucket = f"keys-{uuid.uuid4().hex[:10]}"
        s3 = self.pipeline.recorded_s3
        s3.create_bucket(bucket, record=False)
        s3.put_encryption(bucket, "aws:kms", key, bucket_key=True)
        (invocation,) = self.pipeline.deliver(self.function)
        assert invocation.ok, invocation.error
        return invocation.response, [a.document for a in self.pipeline.received_alerts()]

    def key_event(self, event_name: str, key: str) -> tuple[Invocation, list[ReceivedAlert]]:
        self.pipeline.kms_call(event_name, key)
        (invocation,) = self.pipeline.deliver(self.function)
        assert invocation.ok, invocation.error
        return invocation, self.pipeline.received_alerts()


@pytest.fixture(scope="module")
def keys(synth: SynthFactory, emulator: Emulator) -> Keys:
    return Keys(LocalPipeline(synth(POLICY), emulator), emulator)


def test_a_key_arn_matches_the_alias_the_policy_lists(keys: Keys) -> None:
    response, alerts = keys.encrypt_with(keys.approved)

    assert (response["status"], alerts) == ("COMPLIANT", [])


@pytest.mark.parametrize("make_unusable", ["disable_key", "schedule_key_deletion"])
def test_a_disabled_key_or_one_pending_deletion_is_unusable(keys: Keys, make_unusable: str) -> None:
    metadata = keys.kms.create_key()["KeyMetadata"]
    key = metadata["Arn"]
    # By key id: moto server fails these two calls when given the ARN.
    if make_unusable == "disable_key":
        keys.kms.disable_key(KeyId=metadata["KeyId"])
    else:
        keys.kms.schedule_key_deletion(KeyId=metadata["KeyId"], PendingWindowInDays=7)

    response, (alert,) = keys.encrypt_with(key)

    assert response["status"] == "DRIFT"
    codes = [violation["code"] for violation in alert["violations"]]
    assert "KMS_KEY_UNUSABLE" in codes
    assert alert["severity"] == "HIGH"
    (described,) = alert["keys"]
    assert described["state"] == (
        "Disabled" if make_unusable == "disable_key" else "PendingDeletion"
    )
    # the fix never proposes the broken key: it names the approved one
    assert keys.approved not in alert["remediation"] or key not in alert["remediation"]
    assert key not in alert["remediation"]


def test_a_missing_key_is_not_found(keys: Keys) -> None:
    missing = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{uuid.uuid4()}"

    response, (alert,) = keys.encrypt_with(missing)

    assert response["status"] == "DRIFT"
    assert "KMS_KEY_NOT_FOUND" in [violation["code"] for violation in alert["violations"]]
    assert alert["keys"][0]["state"] == "NotFound"
    assert alert["severity"] == "HIGH"


def test_disabling_a_key_two_buckets_use_alerts_each_bucket_once_and_the_key_once(
    keys: Keys,
) -> None:
    """§15: the key index finds exactly the buckets using the key; each has its own lifecycle
    alert, and one summary names the key, who disabled it and how many buckets it affects."""
    # Given two compliant buckets using one key, and a third bucket on another key
    key = keys.shared
    users = []
    for _ in range(2):
        response, alerts = keys.encrypt_with(key)
        assert (response["status"], alerts) == ("COMPLIANT", [])
        users.append(response["bucket"])
    bystander, _ = keys.encrypt_with(keys.approved)

    # When the key is disabled
    invocation, received = keys.key_event("DisableKey", key)

    # Then each bucket using it alerts KMS_KEY_UNUSABLE, and one summary names the key
    assert invocation.response["buckets"] == 2
    drifts = [a.document for a in received if a.document["status"] == "DRIFT"]
    assert sorted(d["bucket"] for d in drifts) == sorted(users)
    for drift in drifts:
        assert "KMS_KEY_UNUSABLE" in [v["code"] for v in drift["violations"]]
        assert drift["trigger"]["eventName"] == "DisableKey"
        assert drift["trigger"]["actor"].endswith("/PlatformAdmin/alice")
    (summary,) = [a for a in received if a.document["status"] == "KEY_CHANGE"]
    assert summary.document["key"] == key
    assert summary.document["affectedBuckets"] == 2
    assert summary.document["severity"] == "HIGH"
    assert summary.document["trigger"]["actor"].endswith("/PlatformAdmin/alice")
    assert sorted(b["bucket"] for b in summary.document["buckets"]) == sorted(users)
    assert summary.subject.startswith("[KEY_CHANGE] DisableKey on key ")
    assert len(received) == 3  # the bystander bucket is not read again
    assert bystander["bucket"] not in str(summary.document)

    # When the key is enabled again: each bucket's alert is resolved, once
    invocation, received = keys.key_event("EnableKey", key)

    notices = [a.document for a in received if a.document["status"] == "RESOLVED"]
    assert sorted(n["bucket"] for n in notices) == sorted(users)
    (summary,) = [a.document for a in received if a.document["status"] == "KEY_CHANGE"]
    assert (summary["severity"], summary["resolved"]) == ("INFO", 2)

    # And the same event delivered again changes nothing: no second alert or notice per bucket
    keys.pipeline.put_cloudtrail_event(kms_call_detail("EnableKey", key))
    (again,) = keys.pipeline.deliver(keys.function)
    assert [a.document["status"] for a in keys.pipeline.received_alerts()] == ["KEY_CHANGE"]
    assert again.response["buckets"] == 2


def test_a_key_event_on_a_key_no_bucket_uses_sends_nothing(keys: Keys) -> None:
    unused = keys.kms.create_key()["KeyMetadata"]["Arn"]

    invocation, received = keys.key_event("ScheduleKeyDeletion", unused)

    assert invocation.response["status"] == "KEY_UNUSED"
    assert received == []


def test_a_key_many_buckets_use_is_re_read_through_the_key_queue(keys: Keys) -> None:
    """More buckets than one invocation re-reads go to the key queue, 25 to a message."""
    # Given 26 buckets on a key the policy does not list (each alerts KMS_KEY_NOT_ALLOWED)
    key = keys.kms.create_key()["KeyMetadata"]["Arn"]
    buckets = {keys.encrypt_with(key)[0]["bucket"] for _ in range(INLINE_BUCKETS + 1)}

    invocation, received = keys.key_event("ScheduleKeyDeletion", key)

    assert (invocation.response["queued"], invocation.response["buckets"]) == (True, 26)
    (summary,) = [a.document for a in received]
    assert (summary["status"], summary["reevaluation"]) == ("KEY_CHANGE", "queued")
    chunks = keys.pipeline.deliver_key_queue(keys.function)
    # two messages (25 buckets, then 1), each processed without a failure
    assert [c.response for c in chunks] == [{"batchItemFailures": []}] * 2
    # Then each is read again: a new drift (the key is unusable now) for each bucket
    drifts = [a.document for a in keys.pipeline.received_alerts()]
    assert {d["bucket"] for d in drifts} == buckets
    assert all(d["keys"][0]["state"] == "PendingDeletion" for d in drifts)
    assert all("KMS_KEY_UNUSABLE" in [v["code"] for v in d["violations"]] for d in drifts)
