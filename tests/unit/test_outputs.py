"""The optional outputs: ASFF checked against botocore's Security Hub model, failures raised."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from functions.drift_monitor.alerts import build_alert, build_notice
from functions.drift_monitor.asff import asff_finding, finding_id, product_arn
from functions.drift_monitor.lifecycle import BucketState
from functions.drift_monitor.models import Status
from functions.drift_monitor.outputs import EventBusOutput, OutputFailed, SecurityHubOutput
from functions.drift_monitor.policy import Policy
from tests.unit.test_lifecycle import COMPLIANT, DENIED, DRIFT, EXEMPT

NOW = "2026-11-27T12:00:00Z"
PRODUCT = product_arn("eu-west-1", "111122223333")
DRIFTED = BucketState(
    Status.DRIFT,
    "f",
    1,
    violations=("ALGORITHM_NOT_ALLOWED",),
    first_detected="2026-11-27T10:00:00Z",
)


def documents() -> dict[str, dict[str, Any]]:
    policy = Policy()
    return {
        "drift": build_alert(DRIFT, policy, first_detected="2026-11-27T10:00:00Z").document,
        "unverifiable": build_alert(DENIED, policy).document,
        "resolved": build_notice(COMPLIANT, DRIFTED, policy, 7200).document,
        "exempt-resolution": build_notice(EXEMPT, DRIFTED, policy, None).document,
    }


@pytest.mark.parametrize("kind", ["drift", "unverifiable", "resolved", "exempt-resolution"])
def test_every_finding_is_valid_for_batch_import_findings(kind: str) -> None:
    finding = asff_finding(
        documents()[kind], importer_account="111122223333", importer_region="eu-west-1", now=NOW
    )
    model = boto3.Session().client("securityhub", region_name="eu-west-1").meta.service_model
    shape = model.operation_model("BatchImportFindings").input_shape

    report = ParamValidator().validate({"Findings": [finding]}, shape)

    assert not report.has_errors(), report.generate_report()


def test_one_finding_per_bucket_failed_then_passed_and_archived() -> None:
    drift, resolved = documents()["drift"], documents()["resolved"]
    failed = asff_finding(drift, importer_account="111122223333", importer_region="eu-west-1",
                          now=NOW)  # fmt: skip
    passed = asff_finding(resolved, importer_account="111122223333", importer_region="eu-west-1",
                          now=NOW)  # fmt: skip

    assert failed["Id"] == passed["Id"] == finding_id(drift)
    assert failed["Id"] == "s3-encryption-drift-monitor/123456789012/eu-west-1/payments-ledger"
    assert (failed["Compliance"], failed["RecordState"], failed["Workflow"]) == (
        {"Status": "FAILED"},
        "ACTIVE",
        {"Status": "NEW"},
    )
    assert (passed["Compliance"], passed["RecordState"], passed["Workflow"]) == (
        {"Status": "PASSED"},
        "ARCHIVED",
        {"Status": "RESOLVED"},
    )
    # first seen when the drift began, for both imports
    assert failed["CreatedAt"] == passed["CreatedAt"] == "2026-11-27T10:00:00Z"
    assert passed["Severity"] == {"Label": "INFORMATIONAL"}
    # a member account's bucket is imported by the monitor's account and names its owner
    assert failed["AwsAccountId"] == "111122223333"
    assert failed["ProductArn"] == PRODUCT
    assert failed["Resources"][0]["Details"]["AwsS3Bucket"]["OwnerAccountId"] == "123456789012"
    assert failed["Remediation"]["Recommendation"]["Text"].startswith("aws s3api")
    assert "Remediation" not in passed


def test_unverifiable_is_not_available_rather_than_failed() -> None:
    finding = asff_finding(documents()["unverifiable"], importer_account="111122223333",
                           importer_region="eu-west-1", now=NOW)  # fmt: skip

    assert finding["Compliance"] == {"Status": "NOT_AVAILABLE"}
    assert finding["Severity"] == {"Label": "LOW"}
    assert (
        "ServerSideEncryptionConfiguration"
        not in (finding["Resources"][0]["Details"]["AwsS3Bucket"])
    )


def test_a_finding_security_hub_refuses_fails_the_output() -> None:
    client = boto3.Session().client("securityhub", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_response(
        "batch_import_findings",
        {
            "FailedCount": 1,
            "SuccessCount": 0,
            "FailedFindings": [{"Id": "x", "ErrorCode": "InvalidInput", "ErrorMessage": "bad"}],
        },
    )
    with (
        stubber,
        pytest.raises(OutputFailed, match=r"Security Hub refused finding x: InvalidInput bad"),
    ):
        SecurityHubOutput(client, PRODUCT).send(documents()["drift"], NOW)


def test_an_event_the_bus_refuses_fails_the_output() -> None:
    client = boto3.Session().client("events", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_response(
        "put_events",
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
        },
    )
    with stubber, pytest.raises(OutputFailed, match="ThrottlingException slow down"):
        EventBusOutput(client, "default").send(documents()["resolved"], NOW)


def test_the_notice_email_says_how_long_and_what_fixed_it() -> None:
    notice = build_notice(COMPLIANT, DRIFTED, Policy(), 7260)

    assert notice.subject == "[RESOLVED] s3://payments-ledger (123456789012, eu-west-1)"
    assert notice.email.splitlines()[0] == (
        "S3 bucket payments-ledger meets your encryption policy again after 2 hours 1 minute."
    )
    assert "Drifted:   since 2026-11-27T10:00:00Z (2 hours 1 minute)" in notice.email
    assert "Was:       DRIFT (ALGORITHM_NOT_ALLOWED)" in notice.email
    assert "Resolved:  PutBucketEncryption by" in notice.email
    exempt = build_notice(EXEMPT, DRIFTED, Policy(), None)
    assert "now exempt from your encryption policy (bucket tagged team=sandbox)" in exempt.email


def test_the_sweep_s_findings_go_a_hundred_per_call() -> None:
    client = boto3.Session().client("securityhub", region_name="eu-west-1")
    stubber = Stubber(client)
    for size in (100, 100, 50):
        stubber.add_response(
            "batch_import_findings",
            {"FailedCount": 0, "SuccessCount": size, "FailedFindings": []},
        )
    drift = documents()["drift"]
    many = [{**drift, "bucket": f"bucket-{n:03d}"} for n in range(250)]

    with stubber:
        SecurityHubOutput(client, PRODUCT).send_many(many, NOW)

    stubber.assert_no_pending_responses()
