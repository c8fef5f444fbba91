"""Directory and table buckets (§12): the same policy, judged with what each kind supports; the
fix each kind's own API takes; findings and alerts that say the kind."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from functions.drift_monitor.aws.state_store import state_key
from functions.drift_monitor.domain.alerts import build_alert, remediation_command
from functions.drift_monitor.domain.asff import asff_finding, finding_id
from functions.drift_monitor.domain.assessment import assess
from functions.drift_monitor.domain.evaluation import evaluate
from functions.drift_monitor.domain.fix import KEY_PLACEHOLDER, plan_fix
from functions.drift_monitor.domain.models import (
    BucketKind,
    BucketRef,
    EncryptionRule,
    Finding,
    ObservedEncryption,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.digest import build_digest, run_of_result
from functions.drift_monitor.sweep.engine import SweepResult, Tally

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GENERAL = BucketRef("analytics", ACCOUNT, "eu-west-1")
DIRECTORY = BucketRef("ml--euw1-az1--x-s3", ACCOUNT, "eu-west-1", BucketKind.DIRECTORY)
TABLE = BucketRef("analytics", ACCOUNT, "eu-west-1", BucketKind.TABLE)
VECTOR = BucketRef("analytics", ACCOUNT, "eu-west-1", BucketKind.VECTOR)
PUT = Trigger(source="cloudtrail", event_name="PutBucketEncryption")


def judge(bucket: BucketRef, rule: EncryptionRule | None, **policy: Any) -> Finding:
    rules = () if rule is None else (rule,)
    return evaluate(ObservedEncryption(bucket, rules), Policy.from_dict(policy), PUT)


def codes(finding: Finding) -> list[str]:
    return [violation.code.value for violation in finding.violations]


KMS = EncryptionRule("aws:kms", KEY, True)
KMS_NO_BUCKET_KEY = EncryptionRule("aws:kms", KEY, False, ("SSE-C",))
TABLE_KMS = EncryptionRule("aws:kms", KEY)  # table buckets have no Bucket Key setting
OTHER_KEY = EncryptionRule("aws:kms", KEY.replace("1234abcd", "ffffffff"))
SSE_S3 = EncryptionRule("AES256")
BLOCK_SSE_C = {"requireSseCBlocked": True}
BUCKET_KEY = {"requireBucketKey": True}
KINDS = [
    # (case, bucket, observed rule, policy, expected codes)
    ("general: SSE-C not blocked", GENERAL, KMS, BLOCK_SSE_C, ["SSE_C_NOT_BLOCKED"]),
    ("directory: refuses SSE-C anyway", DIRECTORY, KMS, BLOCK_SSE_C, []),
    ("table: refuses SSE-C anyway", TABLE, TABLE_KMS, BLOCK_SSE_C, []),
    ("general: bucket key off", GENERAL, KMS_NO_BUCKET_KEY, BUCKET_KEY, ["BUCKET_KEY_DISABLED"]),
    ("table: has no bucket keys", TABLE, TABLE_KMS, BUCKET_KEY, []),
    ("directory: SSE-S3, default policy", DIRECTORY, SSE_S3, {}, ["ALGORITHM_NOT_ALLOWED"]),
    ("table: SSE-S3, default policy", TABLE, SSE_S3, {}, ["ALGORITHM_NOT_ALLOWED"]),
    ("table: unlisted key", TABLE, OTHER_KEY, {"allowedKmsKeys": [KEY]}, ["KMS_KEY_NOT_ALLOWED"]),
    ("table: no configuration", TABLE, None, {}, ["NO_DEFAULT_ENCRYPTION"]),
]


@pytest.mark.parametrize(
    ("bucket", "rule", "policy", "expected"),
    [case[1:] for case in KINDS],
    ids=[case[0] for case in KINDS],
)
def test_each_kind_is_judged_by_what_it_supports(
    bucket: BucketRef, rule: EncryptionRule | None, policy: dict[str, Any], expected: list[str]
) -> None:
    assert codes(judge(bucket, rule, **policy)) == expected


def test_a_policy_no_directory_bucket_can_meet_says_so() -> None:
    # Given a policy that allows only DSSE-KMS, which directory buckets do not support
    finding = judge(
        DIRECTORY, EncryptionRule("aws:kms", KEY, True), allowedAlgorithms=["aws:kms:dsse"]
    )

    (violation,) = finding.violations
    assert violation.code.value == "ALGORITHM_NOT_ALLOWED"
    assert "supports only AES256, aws:kms" in violation.message
    assert "exemptBuckets" in violation.message
    # and no fix is complete (remediation never applies something that would still drift)
    fix = plan_fix(finding, Policy.from_dict({"allowedAlgorithms": ["aws:kms:dsse"]}))
    assert fix is not None and not fix.complete


def test_a_directory_bucket_fix_names_a_customer_key_and_blocks_nothing() -> None:
    # The AWS managed key is not an option for a directory bucket, nor is BlockedEncryptionTypes
    finding = judge(DIRECTORY, EncryptionRule("AES256"), requireSseCBlocked=True)

    fix = plan_fix(finding, Policy.from_dict({"requireSseCBlocked": True}))

    assert fix is not None and not fix.complete
    assert fix.configuration == {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": KEY_PLACEHOLDER,
                },
                "BucketKeyEnabled": True,
            }
        ]
    }


@pytest.mark.parametrize("bucket", [DIRECTORY, TABLE], ids=["directory", "table"])
def test_an_alias_is_never_proposed_for_a_directory_or_table_bucket(bucket: BucketRef) -> None:
    # They take a key's id or ARN only; a general purpose bucket takes the listed alias
    alias = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/platform"
    policy = Policy.from_dict({"allowedKmsKeys": [alias, KEY]})
    only_alias = Policy.from_dict({"allowedKmsKeys": [alias]})

    def key_of(bucket: BucketRef, policy: Policy) -> str | None:
        finding = judge(bucket, SSE_S3, allowedKmsKeys=list(policy.allowed_kms_keys))
        fix = plan_fix(finding, policy)
        assert fix is not None
        return fix.rule.kms_key_id

    assert key_of(bucket, policy) == KEY
    assert key_of(bucket, only_alias) == KEY_PLACEHOLDER
    assert key_of(GENERAL, only_alias) == alias


def test_emails_leave_out_options_the_kind_does_not_have() -> None:
    table = build_alert(judge(TABLE, TABLE_KMS, allowedAlgorithms=["AES256"]), Policy()).email
    general = build_alert(judge(GENERAL, KMS, allowedAlgorithms=["AES256"]), Policy()).email

    assert f"Rule 1: aws:kms; key {KEY}\n" in table + "\n"
    assert "bucket key on; blocked uploads: none" in general


def test_a_table_bucket_fix_is_put_table_bucket_encryption_with_a_listed_key() -> None:
    policy = Policy.from_dict({"allowedKmsKeys": [KEY]})
    finding = judge(TABLE, EncryptionRule("AES256"), allowedKmsKeys=[KEY])

    fix = plan_fix(finding, policy)
    command = shlex.split(str(remediation_command(finding, policy)))

    assert fix is not None and fix.complete
    assert fix.configuration == {"sseAlgorithm": "aws:kms", "kmsKeyArn": KEY}
    assert command[:3] == ["aws", "s3tables", "put-table-bucket-encryption"]
    assert command[command.index("--table-bucket-arn") + 1] == (
        f"arn:aws:s3tables:eu-west-1:{ACCOUNT}:bucket/analytics"
    )
    configuration = json.loads(command[command.index("--encryption-configuration") + 1])
    # And the fix, applied, is compliant
    fixed = judge(
        TABLE, EncryptionRule("aws:kms", configuration["kmsKeyArn"]), allowedKmsKeys=[KEY]
    )
    assert fixed.status is Status.COMPLIANT


def test_alerts_say_the_kind_and_the_arn() -> None:
    alert = build_alert(judge(TABLE, EncryptionRule("AES256")), Policy())

    assert alert.document["bucketKind"] == "table"
    assert alert.document["bucketArn"] == f"arn:aws:s3tables:eu-west-1:{ACCOUNT}:bucket/analytics"
    assert alert.subject.startswith("[DRIFT] table bucket analytics (")
    assert "Kind:      table bucket (S3 Tables) arn:aws:s3tables:" in alert.email
    general = build_alert(judge(GENERAL, EncryptionRule("AES256")), Policy())
    assert "Kind:" not in general.email  # the default kind needs no line


def test_a_table_bucket_and_a_general_purpose_bucket_of_one_name_stay_apart() -> None:
    # Table bucket names are not unique with general purpose ones: state rows and Security Hub
    # findings must not merge them
    table = build_alert(judge(TABLE, EncryptionRule("AES256")), Policy()).document
    general = build_alert(judge(GENERAL, EncryptionRule("AES256")), Policy()).document

    assert state_key(TABLE) != state_key(GENERAL)
    assert finding_id(table) != finding_id(general)


def test_security_hub_names_other_kinds_as_other_resources_by_arn() -> None:
    document = build_alert(judge(DIRECTORY, EncryptionRule("AES256")), Policy()).document

    finding = asff_finding(
        document, importer_account=ACCOUNT, importer_region="eu-west-1", now="2026-11-27T10:00:00Z"
    )

    (resource,) = finding["Resources"]
    assert resource["Type"] == "Other"
    assert resource["Id"] == DIRECTORY.arn
    assert resource["Details"]["Other"]["BucketKind"] == "directory"
    assert resource["Details"]["Other"]["SSEAlgorithm"] == "AES256"
    assert finding["Title"].startswith("S3 directory bucket ml--euw1-az1--x-s3 ")


def test_the_digest_names_a_table_bucket_as_one() -> None:
    tally = Tally(keep=lambda finding: finding.alerts)
    tally.add(judge(TABLE, SSE_S3))
    tally.add(judge(DIRECTORY, SSE_S3))
    run = run_of_result(
        SweepResult(ACCOUNT, tally, complete=True),
        Policy(),
        Trigger(source="sweep").to_dict(),
        "2026-11-27T06:00:00Z",
        "2026-11-27T06:00:09Z",
    )

    email = build_digest(run, Policy()).email

    assert "table bucket analytics  (eu-west-1)" in email
    assert "s3://ml--euw1-az1--x-s3  (eu-west-1)" in email
    assert "s3://analytics " not in email


def test_the_exempt_tag_is_not_looked_up_for_directory_or_table_buckets() -> None:
    # Given a reader and a tag index that would both call any bucket exempt
    class TaggedEverywhere:
        def read_encryption(self, bucket: BucketRef) -> ObservedEncryption:
            return ObservedEncryption(bucket, (SSE_S3,))

        def read_tags(self, bucket: BucketRef) -> dict[str, str]:
            return {"encryption-monitor:exempt": "true"}

        def exempt_tags_of(self, bucket: BucketRef) -> dict[str, str]:
            return {"encryption-monitor:exempt": "true"}

    tagged = TaggedEverywhere()

    def status(bucket: BucketRef) -> Status:
        return assess(bucket, PUT, Policy(), tagged, exempt_tags=tagged).status

    # Then only the general purpose bucket is exempt: the others drift (exemptBuckets exempts them)
    assert status(GENERAL) is Status.EXEMPT
    assert status(DIRECTORY) is Status.DRIFT
    assert status(TABLE) is Status.DRIFT


def test_a_directory_bucket_s_fix_sends_no_expected_bucket_owner() -> None:
    # A directory bucket answers ExpectedBucketOwner with 501 Not Implemented (S3 API Reference)
    finding = judge(DIRECTORY, SSE_S3, allowedKmsKeys=[KEY])

    command = remediation_command(finding, Policy.from_dict({"allowedKmsKeys": [KEY]}))

    assert command is not None
    argv = shlex.split(command)
    assert argv[:5] == ["aws", "s3api", "put-bucket-encryption", "--bucket", DIRECTORY.name]
    assert "--expected-bucket-owner" not in argv
    assert plan_fix(finding, Policy.from_dict({"allowedKmsKeys": [KEY]})).complete  # type: ignore[union-attr]


def test_a_directory_bucket_s_key_change_is_a_new_bucket() -> None:
    # "only 1 customer managed key per directory bucket for the lifetime of the bucket"
    policy = Policy.from_dict({"allowedKmsKeys": [KEY]})
    finding = judge(DIRECTORY, OTHER_KEY, allowedKmsKeys=[KEY])

    fix = plan_fix(finding, policy)
    command = remediation_command(finding, policy)

    assert fix is not None and fix.recreate and not fix.complete
    assert command is not None
    lines = command.splitlines()
    assert lines[0].startswith("# A directory bucket keeps its KMS key for its lifetime")
    (put,) = [line for line in lines if line.startswith("aws s3api")]
    assert shlex.split(put)[4] == "<NEW-NAME>--euw1-az1--x-s3"
    assert KEY in put
    assert lines[-1] == f"# copy the objects to it and delete s3://{DIRECTORY.name}."


def test_a_table_bucket_s_sse_kms_fix_says_the_maintenance_principal_needs_the_key() -> None:
    finding = judge(TABLE, SSE_S3, allowedKmsKeys=[KEY])

    command = remediation_command(finding, Policy.from_dict({"allowedKmsKeys": [KEY]}))

    assert command is not None
    first, note = command.splitlines()
    assert first.startswith("aws s3tables put-table-bucket-encryption")
    assert "maintenance.s3tables.amazonaws.com" in note


def test_a_vector_bucket_is_judged_by_bucket_and_index_and_fixed_by_a_new_bucket() -> None:
    """§15: no SSE-C or Bucket Key rules (S3 Vectors has neither); each index with its own
    encryption is named; the fix is to recreate, never an automatic write."""
    foreign = "arn:aws:kms:eu-west-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    index = EncryptionRule("aws:kms", foreign, scope="index chunks")
    observed = ObservedEncryption(VECTOR, (EncryptionRule("aws:kms", KEY), index))
    policy = Policy.from_dict({"allowedAlgorithms": ["aws:kms"], "requireBucketKey": True})

    finding = evaluate(observed, policy, PUT)

    assert [(v.code.value, v.message.split(":")[0]) for v in finding.violations] == [
        ("KMS_KEY_CROSS_ACCOUNT", "Index chunks")
    ]
    fix = plan_fix(finding, policy)
    assert fix is not None and fix.recreate and not fix.complete
    assert fix.configuration == {"sseType": "aws:kms", "kmsKeyArn": KEY}
    command = remediation_command(finding, policy)
    assert command is not None
    assert "aws s3vectors create-vector-bucket" in command
    assert state_key(VECTOR) == f"{ACCOUNT}#eu-west-1#vector:analytics" != state_key(GENERAL)
    assert finding_id(build_alert(finding, policy).document).endswith("/vector:analytics")
