"""The policy model: defaults, every field's validation, conflicting combinations, round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.drift_monitor.domain.errors import PolicyError
from functions.drift_monitor.domain.policy import ExemptTag, Policy

KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALIAS = "arn:aws:kms:eu-west-1:123456789012:alias/payments"
MRK = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"


def test_defaults_match_the_spec() -> None:
    policy = Policy.from_dict({})

    assert policy.to_dict() == {
        "allowedAlgorithms": ["aws:kms", "aws:kms:dsse"],
        "allowedKmsKeys": [],
        "allowCrossAccountKeys": False,
        "requireCustomerManagedKey": False,
        "requireBucketKey": False,
        # S3 blocks SSE-C on new buckets since April 2026: opening it up is drift (§13).
        "requireSseCBlocked": True,
        "exemptBuckets": [],
        "exemptTag": "encryption-monitor:exempt=true",
        "keyChecks": False,
        "allowOrganizationKeys": False,
        "exceptions": [],
    }


def exception(**changes: object) -> dict[str, object]:
    """A valid exception with ``changes`` (None removes a field)."""
    raw: dict[str, object] = {
        "buckets": ["legacy-*"],
        "allow": "all",
        "reason": "migration",
        "owner": "team",
        "expires": "2027-03-31",
    }
    raw.update(changes)
    return {name: value for name, value in raw.items() if value is not None}


def test_every_field_round_trips_through_json() -> None:
    raw = {
        "allowedAlgorithms": ["aws:kms"],
        "allowedKmsKeys": [KEY, ALIAS, MRK],
        "allowCrossAccountKeys": False,
        "requireCustomerManagedKey": True,
        "requireBucketKey": True,
        "requireSseCBlocked": True,
        "exemptBuckets": ["sandbox-*", "tmp-?[0-9]"],
        "exemptTag": "team",
        "keyChecks": True,
        "allowOrganizationKeys": True,
        "exceptions": [
            {
                "buckets": ["legacy-*", "arn:aws:s3tables:eu-west-1:111122223333:bucket/lake"],
                "accounts": ["111122223333"],
                "allow": ["SSE_C_NOT_BLOCKED", "ALGORITHM_NOT_ALLOWED"],
                "reason": "vendor uploads with SSE-C until the migration",
                "owner": "data-platform@example.com",
                "expires": "2027-03-31",
            },
            {
                "buckets": ["arn:aws:s3vectors:*:*:bucket/embeddings-*"],
                "accounts": None,
                "allow": "all",
                "reason": "proof of concept",
                "owner": "ml-team",
                "expires": "2026-12-15",
            },
        ],
    }

    policy = Policy.from_json(json.dumps(raw))

    assert policy.to_dict() == raw
    assert Policy.from_json(policy.to_json()) == policy


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        ({"allowedAlgoritms": ["aws:kms"]}, "allowedAlgoritms", "unknown field"),
        ({"allowedAlgorithms": []}, "allowedAlgorithms", "at least one"),
        ({"keyChecks": "yes"}, "keyChecks", "must be true or false"),
        (
            {"allowOrganizationKeys": True, "allowCrossAccountKeys": True},
            "allowOrganizationKeys",
            "has no effect while allowCrossAccountKeys is true",
        ),
        ({"allowedAlgorithms": "aws:kms"}, "allowedAlgorithms", "list of strings"),
        ({"allowedAlgorithms": ["aws:kms", "aws:fsx"]}, "allowedAlgorithms[1]", "not one of"),
        ({"allowedAlgorithms": ["AES-256"]}, "allowedAlgorithms[0]", "not one of"),
        ({"allowedKmsKeys": ["1234abcd-12ab-34cd-56ef-1234567890ab"]}, "allowedKmsKeys[0]", "ARN"),
        ({"allowedKmsKeys": [KEY, "alias/payments"]}, "allowedKmsKeys[1]", "ARN"),
        ({"allowedKmsKeys": ["arn:aws:kms:eu-west-1:1234:key/x"]}, "allowedKmsKeys[0]", "ARN"),
        ({"allowedKmsKeys": ["arn:aws:s3:::bucket"]}, "allowedKmsKeys[0]", "ARN"),
        ({"allowedKmsKeys": [7]}, "allowedKmsKeys[0]", "must be a string"),
        ({"allowCrossAccountKeys": "false"}, "allowCrossAccountKeys", "true or false"),
        ({"requireCustomerManagedKey": 1}, "requireCustomerManagedKey", "true or false"),
        ({"requireBucketKey": None}, "requireBucketKey", "true or false"),
        ({"requireSseCBlocked": "yes"}, "requireSseCBlocked", "true or false"),
        ({"exemptBuckets": ["ok-*", "bad/name"]}, "exemptBuckets[1]", "glob"),
        ({"exemptTag": ""}, "exemptTag", "'key', 'key=value' or null"),
        ({"exemptTag": 3}, "exemptTag", "'key', 'key=value' or null"),
        ({"exceptions": {"buckets": ["a*"]}}, "exceptions", "list of exceptions"),
        ({"exceptions": [exception(reason=None)]}, "exceptions[0].reason", "is required"),
        ({"exceptions": [exception(owner=None)]}, "exceptions[0].owner", "is required"),
        ({"exceptions": [exception(expires=None)]}, "exceptions[0].expires", "is required"),
        ({"exceptions": [exception(owner="  ")]}, "exceptions[0].owner", "non-empty string"),
        (
            {"exceptions": [exception(), exception(expires="31/03/2027")]},
            "exceptions[1].expires",
            "not a date",
        ),
        ({"exceptions": [exception(expires="2027-02-30")]}, "exceptions[0].expires", "not a date"),
        ({"exceptions": [exception(expires=20270331)]}, "exceptions[0].expires", "not a date"),
        (
            {"exceptions": [exception(allow=["SSE_C_BLOCKED"])]},
            "exceptions[0].allow[0]",
            "not a violation code",
        ),
        (
            {"exceptions": [exception(allow=["EVENT_PATH_SILENT"])]},
            "exceptions[0].allow[0]",
            "not a violation code",
        ),
        ({"exceptions": [exception(allow="some")]}, "exceptions[0].allow", '"all" or a list'),
        (
            {"exceptions": [exception(buckets=["ok-*", "logs/2026"])]},
            "exceptions[0].buckets[1]",
            "cannot match a bucket name",
        ),
        (
            {"exceptions": [exception(buckets=["ab"])]},
            "exceptions[0].buckets[0]",
            "cannot match a bucket name",
        ),
        (
            {"exceptions": [exception(buckets=["arn:aws:s3:::logs/2026/*"])]},
            "exceptions[0].buckets[0]",
            "not a bucket ARN",
        ),
        (
            {"exceptions": [exception(buckets=["arn:aws:ec2:eu-west-1:111122223333:vpc/v"])]},
            "exceptions[0].buckets[0]",
            "not a bucket ARN",
        ),
        ({"exceptions": [exception(buckets=[])]}, "exceptions[0].buckets", "non-empty list"),
        (
            {"exceptions": [exception(accounts=["1234"])]},
            "exceptions[0].accounts[0]",
            "12-digit",
        ),
        ({"exceptions": [exception(until="2027-01-01")]}, "exceptions[0].until", "unknown field"),
        ({"exemptTag": "=true"}, "exemptTag", "tag key"),
        ({"exemptTag": "team=a\nb"}, "exemptTag", "tag value"),
    ],
)
def test_invalid_fields_are_refused_naming_the_field(
    raw: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        Policy.from_dict(raw)

    assert refused.value.field == field
    assert problem in refused.value.problem
    assert f"'{field}'" in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        # Keys listed but no KMS algorithm allowed: the keys could never be used.
        ({"allowedAlgorithms": ["AES256"], "allowedKmsKeys": [KEY]}, "allowedKmsKeys"),
        # SSE-S3 never uses a customer managed key, so the two requirements contradict.
        (
            {"allowedAlgorithms": ["AES256", "aws:kms"], "requireCustomerManagedKey": True},
            "requireCustomerManagedKey",
        ),
        # Listing the AWS managed key while requiring a customer managed one.
        (
            {
                "allowedKmsKeys": ["arn:aws:kms:eu-west-1:123456789012:alias/aws/s3"],
                "requireCustomerManagedKey": True,
            },
            "allowedKmsKeys",
        ),
    ],
)
def test_contradictory_combinations_are_refused(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as refused:
        Policy.from_dict(raw)

    assert refused.value.field == field


@pytest.mark.parametrize(
    "document", ["not json", "[1, 2]", '"a string"', "null"], ids=["text", "list", "str", "null"]
)
def test_a_document_that_is_not_an_object_is_refused(document: str) -> None:
    with pytest.raises(PolicyError) as refused:
        Policy.from_json(document)

    assert refused.value.field == "(document)"


def test_duplicates_are_dropped_keeping_order() -> None:
    policy = Policy.from_dict(
        {
            "allowedAlgorithms": ["aws:kms:dsse", "aws:kms", "aws:kms:dsse"],
            "allowedKmsKeys": [KEY, KEY],
        }
    )

    assert policy.allowed_algorithms == ("aws:kms:dsse", "aws:kms")
    assert policy.allowed_kms_keys == (KEY,)


def test_exempt_tag_null_disables_tag_exemption() -> None:
    assert Policy.from_dict({"exemptTag": None}).exempt_tag is None


@pytest.mark.parametrize(
    ("spec", "tags", "exempt"),
    [
        ("encryption-monitor:exempt=true", {"encryption-monitor:exempt": "true"}, True),
        ("encryption-monitor:exempt=true", {"encryption-monitor:exempt": "TRUE"}, False),
        ("encryption-monitor:exempt=true", {"other": "true"}, False),
        ("team", {"team": "anything"}, True),
        ("team", {"team": ""}, True),
        ("team=", {"team": ""}, True),
        ("team=", {"team": "x"}, False),
        ("team", {}, False),
    ],
)
def test_exempt_tag_matching(spec: str, tags: dict[str, str], exempt: bool) -> None:
    assert ExemptTag.parse(spec).matches(tags) is exempt


@pytest.mark.parametrize(
    ("bucket", "exempt"),
    [("sandbox-alice", True), ("sandbox", False), ("tmp-a1", True), ("tmp-a12", False)],
)
def test_exempt_bucket_globs(bucket: str, exempt: bool) -> None:
    policy = Policy.from_dict({"exemptBuckets": ["sandbox-*", "tmp-?[0-9]"]})

    assert policy.is_exempt_name(bucket) is exempt
