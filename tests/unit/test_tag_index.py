"""Exempt buckets found in bulk for a sweep (the Resource Groups Tagging API), one lookup per
region; a region whose lookup fails says so, and the sweep reads those buckets' own tags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.drift_monitor.aws.credentials import AccountAccess
from functions.drift_monitor.aws.tag_index import ExemptIndex, exempt_index
from functions.drift_monitor.domain.assessment import assess
from functions.drift_monitor.domain.models import (
    BucketRef,
    EncryptionRule,
    ObservedEncryption,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import ExemptTag, Policy
from local.demo_account import DemoBucket, populate
from local.emulator import Emulator, moto_server

EXEMPT = {"encryption-monitor:exempt": "true"}


@pytest.fixture(scope="module")
def account() -> Iterator[Emulator]:
    with moto_server() as emulator:
        populate(
            emulator,
            (
                DemoBucket(
                    "tagged-eu",
                    tags={**EXEMPT, "encryption-monitor:exempt-until": "2027-01-31"},
                ),
                DemoBucket("tagged-us", region="us-east-1", tags=EXEMPT),
                DemoBucket("other-value", tags={"encryption-monitor:exempt": "false"}),
                DemoBucket("untagged"),
            ),
        )
        yield emulator


def index_of(emulator: Emulator, tag: str) -> ExemptIndex:
    access = AccountAccess(
        emulator.session(), home_account=emulator.account, endpoint_url=emulator.endpoint
    )
    return ExemptIndex(access, emulator.account, ExemptTag.parse(tag))


def bucket(name: str, region: str = "eu-west-1") -> BucketRef:
    return BucketRef(name, "123456789012", region)


def test_a_key_value_tag_finds_exactly_the_buckets_with_that_value(account: Emulator) -> None:
    index = index_of(account, "encryption-monitor:exempt=true")

    # the companion tags come with the exempt tag: an exemption's end costs no extra call
    assert index.exempt_tags_of(bucket("tagged-eu")) == {
        "encryption-monitor:exempt": "true",
        "encryption-monitor:exempt-until": "2027-01-31",
    }
    assert index.exempt_tags_of(bucket("tagged-us", "us-east-1")) == {
        "encryption-monitor:exempt": "true"
    }
    assert index.exempt_tags_of(bucket("other-value")) == {}
    assert index.exempt_tags_of(bucket("untagged")) == {}
    # one lookup per region, made once, whatever the number of buckets asked about
    assert index.lookups == 2


def test_a_key_alone_finds_every_value(account: Emulator) -> None:
    index = index_of(account, "encryption-monitor:exempt")

    assert index.exempt_tags_of(bucket("other-value")) == {"encryption-monitor:exempt": "false"}
    assert index.exempt_tags_of(bucket("untagged")) == {}


def test_a_region_whose_lookup_fails_is_unknown(account: Emulator) -> None:
    index = index_of(account, "encryption-monitor:exempt=true")

    class Refusing:
        def get_resources(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetResources")

    index._access.client = lambda *_, **__: Refusing()  # type: ignore[method-assign]

    assert index.exempt_tags_of(bucket("tagged-eu")) is None


def test_no_index_when_the_policy_exempts_by_no_tag(account: Emulator) -> None:
    access = AccountAccess(account.session(), endpoint_url=account.endpoint)

    assert exempt_index(access, account.account, Policy(exempt_tag=None)) is None
    assert exempt_index(access, account.account, Policy()) is not None


class Reader:
    """A drifting bucket whose tags are read only when the index cannot say."""

    def __init__(self) -> None:
        self.tag_reads = 0

    def read_encryption(self, ref: BucketRef) -> ObservedEncryption:
        return ObservedEncryption(ref, (EncryptionRule("AES256"),))

    def read_tags(self, ref: BucketRef) -> dict[str, str]:
        self.tag_reads += 1
        return EXEMPT


@pytest.mark.parametrize(
    ("indexed", "status", "tag_reads"),
    [(True, Status.EXEMPT, 0), (False, Status.DRIFT, 0), (None, Status.EXEMPT, 1)],
    ids=["indexed-exempt", "indexed-not-exempt", "unknown-reads-the-tags"],
)
def test_assess_asks_the_index_first(indexed: bool | None, status: Status, tag_reads: int) -> None:
    class Index:
        def exempt_tags_of(self, ref: BucketRef) -> dict[str, str] | None:
            return None if indexed is None else EXEMPT if indexed else {}

    reader = Reader()

    finding = assess(bucket("b"), Trigger(source="sweep"), Policy(), reader, exempt_tags=Index())

    assert (finding.status, reader.tag_reads) == (status, tag_reads)
