r"""A §6 document as an AWS Security Finding Format (ASFF) finding: one finding per bucket.

The finding's ``Id`` is the bucket's (account, region, name), so every import for a bucket
updates the same finding: FAILED while it drifts, PASSED and ARCHIVED once resolved. Field names,
enums and patterns are those of botocore's ``securityhub`` model (``AwsSecurityFinding``), which
the tests validate against: no value may be empty (``NonEmptyString``, pattern ``.*\S.*``).

As Security Hub CSPM's API reference says of BatchImportFindings: a provider sets Severity and
Types through ``FindingProviderFields`` (it "should not use BatchImportFindings to update" the
top-level ones), and ``Workflow`` only when the finding is created ("After a finding is created,
BatchImportFindings cannot be used to update ... Workflow"; Security Hub sets it back to NEW
itself when a resolved finding fails again). Findings not updated for 90 days are deleted, so the
sweep imports every open one again.
"""

from __future__ import annotations

from typing import Any

from .lifecycle import RESOLVED
from .models import BucketKind, Status, partition_of

SCHEMA_VERSION = "2018-10-08"
GENERATOR_ID = "s3-encryption-drift-monitor"
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices/S3 Default Encryption"
_SEVERITY = {"HIGH": "HIGH", "MEDIUM": "MEDIUM", "LOW": "LOW", "INFO": "INFORMATIONAL"}
_TITLE_LIMIT = 256
_DESCRIPTION_LIMIT = 1024
_RECOMMENDATION_LIMIT = 512
# ProductFields: "up to 50 key-value pairs ... the value can contain up to 2048 characters"
# (Security Hub API Reference, AwsSecurityFinding.ProductFields).
_FIELD_LIMIT = 2048


def product_arn(region: str, account: str) -> str:
    """The product ARN of findings an account imports itself (a custom integration)."""
    return f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default"


def finding_id(document: dict[str, Any]) -> str:
    # A table bucket may share its name with a general purpose bucket (see state_key).
    name = document["bucket"]
    if _kind(document) in (BucketKind.TABLE, BucketKind.VECTOR):
        name = f"{document['bucketKind']}:{name}"
    return f"{GENERATOR_ID}/{document['account']}/{document['region']}/{name}"


def _kind(document: dict[str, Any]) -> BucketKind:
    return BucketKind(document.get("bucketKind") or BucketKind.GENERAL_PURPOSE)


def noun(document: dict[str, Any]) -> str:
    """How titles name the bucket: "S3 bucket", "S3 directory bucket" or "S3 table bucket"."""
    return {
        BucketKind.GENERAL_PURPOSE: "S3 bucket",
        BucketKind.DIRECTORY: "S3 directory bucket",
        BucketKind.TABLE: "S3 table bucket",
        BucketKind.VECTOR: "S3 vector bucket",
    }[_kind(document)]


def asff_finding(
    document: dict[str, Any],
    *,
    importer_account: str,
    importer_region: str,
    now: str,
    created: bool = False,
) -> dict[str, Any]:
    """The finding ``importer_account`` imports in ``importer_region``. Security Hub accepts
    findings of the importing account only (for the default product), so a member account's
    bucket is reported by the monitor's account and named as the bucket's owner. ``created``:
    this import creates the finding (its first), so it carries the workflow status."""
    status = document["status"]
    compliance, workflow, record_state = _states(status)
    severity = _SEVERITY.get(document["severity"] or "", "INFORMATIONAL")
    first_seen = document.get("firstDetected") or now
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(document),
        "ProductArn": product_arn(importer_region, importer_account),
        "GeneratorId": GENERATOR_ID,
        "AwsAccountId": importer_account,
        "FindingProviderFields": {"Severity": {"Label": severity}, "Types": [FINDING_TYPE]},
        "FirstObservedAt": first_seen,
        "LastObservedAt": now,
        "CreatedAt": first_seen,
        "UpdatedAt": now,
        "Title": _clip(_title(document), _TITLE_LIMIT),
        "Description": _clip(_description(document), _DESCRIPTION_LIMIT),
        "ProductFields": {
            "s3-encryption-drift-monitor/status": status,
            "s3-encryption-drift-monitor/violations": ",".join(
                violation["code"] for violation in document["violations"]
            )
            or "none",
        },
        "Resources": [_resource(document)],
        "Compliance": {"Status": compliance},
        "RecordState": record_state,
    }
    finding["ProductFields"].update(_exception_fields(document.get("exception")))
    if created:
        finding["Workflow"] = {"Status": workflow}
    if document.get("remediation"):
        finding["Remediation"] = {
            "Recommendation": {"Text": _clip(document["remediation"], _RECOMMENDATION_LIMIT)}
        }
    return finding


def _exception_fields(exception: dict[str, Any] | None) -> dict[str, str]:
    """§15: the exception (in force or expired) as product fields; FieldMap values are
    NonEmptyString, so what the exception leaves unsaid is left out."""
    if not exception:
        return {}
    fields = {
        "exception": exception["source"],
        "exceptionOwner": exception["owner"],
        "exceptionReason": exception["reason"],
        "exceptionExpires": exception["expires"],
        "exceptionExpired": str(exception["expired"]).lower(),
    }
    return {
        f"s3-encryption-drift-monitor/{name}": _clip(value, _FIELD_LIMIT)
        for name, value in fields.items()
        if value and value.strip()
    }


def _states(status: str) -> tuple[str, str, str]:
    """Compliance status, workflow status and record state."""
    if status == Status.DRIFT:
        return "FAILED", "NEW", "ACTIVE"
    if status == Status.UNVERIFIABLE:
        return "NOT_AVAILABLE", "NEW", "ACTIVE"
    if status == Status.EXEMPT:
        return "PASSED", "SUPPRESSED", "ACTIVE"
    if status == RESOLVED:
        return "PASSED", "RESOLVED", "ARCHIVED"
    return "PASSED", "RESOLVED", "ACTIVE"  # COMPLIANT, as the scanner reports it


def _title(document: dict[str, Any]) -> str:
    bucket = f"{noun(document)} {document['bucket']}"
    return {
        Status.DRIFT.value: f"{bucket} default encryption drifts from policy",
        Status.UNVERIFIABLE.value: f"{bucket} default encryption could not be verified",
        Status.EXEMPT.value: f"{bucket} is exempt from the encryption policy",
        RESOLVED: f"{bucket} default encryption drift resolved",
    }.get(document["status"], f"{bucket} default encryption meets policy")


def _description(document: dict[str, Any]) -> str:
    violations = document["violations"]
    if violations:
        return " ".join(f"{v['code']}: {v['message']}" for v in violations)
    resolution = document.get("resolution")
    if resolution:
        return (
            f"Resolved ({resolution['outcome']}); it was {resolution['previousStatus']} "
            f"({', '.join(resolution['previousViolations']) or 'no violations'}) since "
            f"{resolution['driftedSince'] or 'an unknown time'}."
        )
    return "The bucket's default encryption meets the policy in force."


def _resource(document: dict[str, Any]) -> dict[str, Any]:
    """AwsS3Bucket for a general purpose bucket. ASFF has no type for directory and table
    buckets: they are ``Other``, named by their ARN, with their configuration as strings."""
    region = document["region"]
    resource: dict[str, Any] = {
        "Type": "AwsS3Bucket",
        "Id": document["bucketArn"],
        "Partition": partition_of(region),
        "Region": region,
        "Details": {"AwsS3Bucket": _bucket_details(document)},
    }
    if _kind(document) is BucketKind.GENERAL_PURPOSE:
        return resource
    rules = (document.get("observed") or {}).get("rules") or []
    other = {
        "BucketKind": document["bucketKind"],
        "Name": document["bucket"],
        "OwnerAccountId": document["account"],
        "SSEAlgorithm": "|".join(rule["algorithm"] for rule in rules if rule["algorithm"]),
        "KMSMasterKeyID": "|".join(rule["kmsKeyId"] for rule in rules if rule["kmsKeyId"]),
    }
    # FieldMap values are NonEmptyString: what is unknown or absent is left out, never "".
    kept = {name: value for name, value in other.items() if value and value.strip()}
    return {**resource, "Type": "Other", "Details": {"Other": kept}}


def _bucket_details(document: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"Name": document["bucket"], "OwnerAccountId": document["account"]}
    observed = document.get("observed")
    if observed and observed["rules"]:
        rules = []
        for rule in observed["rules"]:
            if not rule["algorithm"]:
                continue  # an algorithm S3 did not name: nothing to report (no empty strings)
            by_default = {"SSEAlgorithm": rule["algorithm"]}
            if rule["kmsKeyId"]:
                by_default["KMSMasterKeyID"] = rule["kmsKeyId"]
            rules.append({"ApplyServerSideEncryptionByDefault": by_default})
        if rules:
            details["ServerSideEncryptionConfiguration"] = {"Rules": rules}
    return details


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
