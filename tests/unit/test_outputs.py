"""The optional outputs: ASFF checked against botocore's Security Hub model, failures raised."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from functions.drift_monitor.aws.outputs import EventBusOutput, OutputFailed, SecurityHubOutput
from functions.drift_monitor.domain.alerts import build_alert, build_notice
from functions.drift_monitor.domain.asff import FINDING_TYPE, asff_finding, finding_id, product_arn
from functions.drift_monitor.domain.assessment import unverifiable
from functions.drift_monitor.domain.errors import BucketUnreadable
from functions.drift_monitor.domain.evaluation import evaluate
from functions.drift_monitor.domain.lifecycle import BucketState
from functions.drift_monitor.domain.models import (
    BucketKind,
    BucketRef,
    EncryptionRule,
    ObservedEncryption,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import Policy
from tests.unit.test_lifecycle import COMPLIANT, DENIED, DRIFT, EXEMPT

NOW = "2026-11-27T12:00:00Z"
PUT = Trigger(source="cloudtrail", event_name="PutBucketEncryption")
PRODUCT = product_arn("eu-west-1", "111122223333")
DRIFTED = BucketState(
    Status.DRIFT,
    "f",
    1,
    violations=("ALGORITHM_NOT_ALLOWED",),
    first_detected="2026-11-27T10:00:00Z",
)


DIRECTORY = BucketRef("ml--euw1-az1--x-s3", "123456789012", "eu-west-1", BucketKind.DIRECTORY)


def documents() -> dict[str, dict[str, Any]]:
    policy = Policy()
    denied = BucketUnreadable(DIRECTORY, "s3express:GetEncryptionConfiguration", "AccessDenied")
    on_sse_s3 = ObservedEncryption(DIRECTORY, (EncryptionRule("AES256"),))
    return {
        "drift": build_alert(DRIFT, policy, first_detected="2026-11-27T10:00:00Z").document,
        "unverifiable": build_alert(DENIED, policy).document,
        "resolved": build_notice(COMPLIANT, DRIFTED, policy, 7200).document,
        "exempt-resolution": build_notice(EXEMPT, DRIFTED, policy, None).document,
        # Resource type Other: its details hold only what is known (no KMS key on SSE-S3).
        "directory-sse-s3": build_alert(evaluate(on_sse_s3, policy, PUT), policy).document,
        "directory-unverifiable": build_alert(
            unverifiable(DIRECTORY, PUT, denied), policy
        ).document,
    }


def model_errors(value: Any, shape: Shape, path: str = "") -> list[str]:
    """What botocore's ParamValidator leaves out: patterns, enums and lengths of the model, as
    Security Hub checks them (a FieldMap value is a NonEmptyString, pattern .*\\S.*)."""
    errors: list[str] = []
    if isinstance(shape, StructureShape):
        errors += [f"{path}.{name} missing" for name in shape.required_members if name not in value]
        for name, member in value.items():
            if name not in shape.members:
                errors.append(f"{path}.{name} is not in the model")
            else:
                errors += model_errors(member, shape.members[name], f"{path}.{name}")
    elif isinstance(shape, ListShape):
        for index, item in enumerate(value):
            errors += model_errors(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            errors += model_errors(key, shape.key, f"{path} key")
            errors += model_errors(item, shape.value, f"{path}[{key}]")
    elif shape.type_name == "string":
        pattern = shape.metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value, flags=re.DOTALL):
            errors.append(f"{path} {value!r} does not match {pattern}")
        if value not in shape.enum and shape.enum:
            errors.append(f"{path} {value!r} is not one of {shape.enum}")
        if len(value) < shape.metadata.get("min", 0):
            errors.append(f"{path} {value!r} is shorter than {shape.metadata['min']}")
    return errors


def finding_shape() -> Shape:
    model = boto3.Session().client("securityhub", region_name="eu-west-1").meta.service_model
    return model.shape_for("AwsSecurityFinding")


def test_the_model_check_catches_an_empty_string() -> None:
    finding = asff_finding(
        documents()["drift"], importer_account="111122223333", importer_region="eu-west-1", now=NOW
    )
    finding["Resources"][0]["Details"] = {"Other": {"KMSMasterKeyID": ""}}

    assert model_errors(finding, finding_shape()) == [
        ".Resources[0].Details.Other[KMSMasterKeyID] '' does not match .*\\S.*"
    ]


@pytest.mark.parametrize("created", [True, False], ids=["created", "updated"])
@pytest.mark.parametrize("kind", list(documents()))
def test_every_finding_is_valid_for_batch_import_findings(kind: str, created: bool) -> None:
    finding = asff_finding(
        documents()[kind],
        importer_account="111122223333",
        importer_region="eu-west-1",
        now=NOW,
        created=created,
    )
    model = boto3.Session().client("securityhub", region_name="eu-west-1").meta.service_model
    shape = model.operation_model("BatchImportFindings").input_shape

    report = ParamValidator().validate({"Findings": [finding]}, shape)

    assert not report.has_errors(), report.generate_report()
    assert model_errors(finding, finding_shape()) == []


def test_severity_and_types_are_the_provider_s_and_the_workflow_is_set_only_at_creation() -> None:
    drift = documents()["drift"]
    created, updated = (
        asff_finding(drift, importer_account="111122223333", importer_region="eu-west-1",
                     now=NOW, created=created)
        for created in (True, False)
    )  # fmt: skip

    for finding in (created, updated):
        assert finding["FindingProviderFields"] == {
            "Severity": {"Label": "MEDIUM"},
            "Types": [FINDING_TYPE],
        }
        assert "Severity" not in finding and "Types" not in finding
    assert created["Workflow"] == {"Status": "NEW"}
    assert "Workflow" not in updated


def test_one_finding_per_bucket_failed_then_passed_and_archived() -> None:
    drift, resolved = documents()["drift"], documents()["resolved"]
    failed = asff_finding(drift, importer_account="111122223333", importer_region="eu-west-1",
                          now=NOW, created=True)  # fmt: skip
    passed = asff_finding(resolved, importer_account="111122223333", importer_region="eu-west-1",
                          now=NOW)  # fmt: skip

    assert failed["Id"] == passed["Id"] == finding_id(drift)
    assert failed["Id"] == "s3-encryption-drift-monitor/123456789012/eu-west-1/payments-ledger"
    assert (failed["Compliance"], failed["RecordState"], failed["Workflow"]) == (
        {"Status": "FAILED"},
        "ACTIVE",
        {"Status": "NEW"},
    )
    # Resolved by its record state and compliance: the workflow is the customer's after creation.
    assert (passed["Compliance"], passed["RecordState"]) == ({"Status": "PASSED"}, "ARCHIVED")
    assert "Workflow" not in passed
    # first seen when the drift began, for both imports
    assert failed["CreatedAt"] == passed["CreatedAt"] == "2026-11-27T10:00:00Z"
    assert passed["FindingProviderFields"]["Severity"] == {"Label": "INFORMATIONAL"}
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
    assert finding["FindingProviderFields"]["Severity"] == {"Label": "LOW"}
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
    many = [({**drift, "bucket": f"bucket-{n:03d}"}, False) for n in range(250)]

    with stubber:
        SecurityHubOutput(client, PRODUCT).send_many(many, NOW)

    stubber.assert_no_pending_responses()
