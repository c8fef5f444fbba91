"""Key checks end to end (SPEC §12): the synthesized function, with keyChecks in its policy, asks
moto server's KMS about each bucket's key."""

from __future__ import annotations

import uuid

import pytest

from local.emulator import Emulator
from local.pipeline import LocalPipeline
from tests.e2e.conftest import SynthFactory

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
APPROVED_ALIAS = f"alias/e2e-approved-{uuid.uuid4().hex[:6]}"
POLICY = {
    "allowedAlgorithms": ["aws:kms"],
    "allowedKmsKeys": [f"arn:aws:kms:eu-west-1:{ACCOUNT}:{APPROVED_ALIAS}"],
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

    def encrypt_with(self, key: str) -> tuple[dict[str, object], list[dict[str, object]]]:
        bucket = f"keys-{uuid.uuid4().hex[:10]}"
        s3 = self.pipeline.recorded_s3
        s3.create_bucket(bucket, record=False)
        s3.put_encryption(bucket, "aws:kms", key, bucket_key=True)
        (invocation,) = self.pipeline.deliver(self.function)
        assert invocation.ok, invocation.error
        return invocation.response, [a.document for a in self.pipeline.received_alerts()]


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
