"""End to end, §14's heartbeat in an organization: beats from every account and region travel
the real path (stand-in default bus, forwarder or member rule, central bus, the deployed event
function run as Lambda runs it); a path broken on purpose goes silent, alerts once, and resolves
when it is repaired."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from local.emulator import moto_server
from local.template import SynthesizedMonitor
from tests.e2e.conftest import SynthFactory
from tests.e2e.test_organization import POLICY, REGIONS, Organization, organization_of

pytestmark = pytest.mark.e2e

ORGANIZATION_ID = "o-e2eheartbeat"


@pytest.fixture(scope="module")
def monitor(synth: SynthFactory) -> SynthesizedMonitor:
    return synth(
        POLICY,
        organizationId=ORGANIZATION_ID,
        memberTargets="r-e2eh",
        regions=",".join(REGIONS),
        heartbeat="rate(15 minutes)",
    )


@pytest.fixture
def org(monitor: SynthesizedMonitor) -> Iterator[Organization]:
    with moto_server(organization_id=ORGANIZATION_ID) as emulator:
        yield organization_of(monitor, emulator, members=1)


def test_every_account_and_region_beats_through_its_own_path(org: Organization) -> None:
    (member,) = org.members
    pipeline = org.pipeline
    # Deployed: a heartbeat in the monitor's account and the member's, in every watched region
    assert sorted(pipeline.heartbeats) == sorted(
        (account, region) for account in (org.central, member) for region in REGIONS
    )

    # When every schedule runs once
    pipeline.beat()
    invocations = pipeline.deliver(org.function)

    # Then each beat reached the function (through forwarders and the central bus) and was
    # recorded, with nothing judged and nobody told
    assert sorted((i.response["status"], i.response["bucket"]) for i in invocations) == sorted(
        ("HEARTBEAT", f"s3-encryption-monitor-hb-{account}-{region}")
        for account in (org.central, member)
        for region in REGIONS
    )
    assert all(i.response["action"] == "NONE" for i in invocations)
    assert pipeline.received_alerts() == []
    watch = org.function.invoke(pipeline.watchdog_event())
    assert watch.ok, watch.error
    assert watch.response["silent"] == []


def test_a_broken_member_path_alerts_once_and_resolves_when_repaired(org: Organization) -> None:
    (member,) = org.members
    pipeline = org.pipeline
    start = datetime.now(UTC)
    pipeline.beat()
    assert all(i.ok for i in pipeline.deliver(org.function))

    # Given the member's forwarder in us-west-2 disabled (a piece of the path broken)
    pipeline.switch_forwarder(member, "us-west-2", enabled=False)

    # When the schedules run again 40 minutes later (the watchdog's clock is its event's time)
    later = start + timedelta(minutes=40)
    pipeline.beat(at=later)
    delivered = pipeline.deliver(org.function)
    broken = f"s3-encryption-monitor-hb-{member}-us-west-2"
    assert broken not in {i.response["bucket"] for i in delivered}
    assert len(delivered) == 2 * len(REGIONS) - 1
    silent = org.function.invoke(pipeline.watchdog_event(later))
    again = org.function.invoke(pipeline.watchdog_event(later + timedelta(minutes=5)))

    # Then that path alone is silent (its last beat was at `start`), and alerts once
    assert silent.response["silent"] == [f"{member}/us-west-2"]
    assert silent.response["alerts"] and again.response["alerts"] == []
    alerts = [a for a in pipeline.received_alerts() if a.document["region"] == "us-west-2"]
    (alert,) = alerts
    assert alert.subject.startswith(f"[UNVERIFIABLE] s3://s3-encryption-monitor-hb-{member}")
    assert alert.document["severity"] == "HIGH"
    assert [v["code"] for v in alert.document["violations"]] == ["EVENT_PATH_SILENT"]
    assert alert.document["account"] == member

    # When the forwarder is enabled again and the next beat comes through
    pipeline.switch_forwarder(member, "us-west-2", enabled=True)
    pipeline.beat(member, "us-west-2", at=later + timedelta(minutes=15))
    (back,) = pipeline.deliver(org.function)

    # Then one RESOLVED notice closes it
    assert back.response["action"] == "RESOLVE"
    (notice,) = pipeline.received_alerts()
    assert notice.document["status"] == "RESOLVED"
    assert (notice.document["account"], notice.document["region"]) == (member, "us-west-2")
    assert notice.document["resolution"]["previousViolations"] == ["EVENT_PATH_SILENT"]
