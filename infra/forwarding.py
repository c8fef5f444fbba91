"""The S3 events the monitor watches, and the rule that forwards them from where they happen.

S3 delivers a bucket's CloudTrail events to EventBridge in the bucket's own account and region.
A forwarder in every other watched region (and, in the organization topology, in every member
account) sends the matching events, and only those, to the monitor's bus.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

CREATE_BUCKET = "CreateBucket"
MONITORED_EVENTS = (CREATE_BUCKET, "PutBucketEncryption", "DeleteBucketEncryption")
# §11: a deletion resolves an open drift; tag changes can add or remove an exemption.
DELETE_BUCKET = "DeleteBucket"
TAGGING_EVENTS = ("PutBucketTagging", "DeleteBucketTagging")


def monitored_events(*, exempt_tag: bool) -> tuple[str, ...]:
    """Every S3 call that can change a bucket's verdict under the policy."""
    return (*MONITORED_EVENTS, DELETE_BUCKET, *(TAGGING_EVENTS if exempt_tag else ()))


def s3_change_pattern(event_names: tuple[str, ...] | list[str]) -> events.EventPattern:
    """SPEC §3 and §11: the named S3 calls, successful ones only."""
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["AWS API Call via CloudTrail"],
        detail={
            "eventSource": ["s3.amazonaws.com"],
            "eventName": list(event_names),
            "errorCode": [{"exists": False}],
        },
    )


def default_bus_arn(region: str) -> str:
    """This account's default event bus in ``region``."""
    return f"arn:{Aws.PARTITION}:events:{region}:{Aws.ACCOUNT_ID}:event-bus/default"


class EventForwarder(Construct):
    """A rule on this region's default bus sending the monitor's events to ``target_bus_arn``,
    through a role that may do nothing but put events on that one bus."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target_bus_arn: str,
        event_names: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="Lets the S3 encryption monitor's forwarding rule put events on its bus",
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="Forwards S3 bucket creations, deletions and default-encryption (and "
            "exemption tag) changes, successful calls only, to the S3 encryption drift monitor",
            event_pattern=s3_change_pattern(event_names),
        )
        # The target grants the role events:PutEvents on that bus, and nothing else. EventBridge
        # retries a bus target for 24 hours by itself; what still fails is caught by the next
        # sweep, which reads every bucket's state.
        self.rule.add_target(
            targets.EventBus(
                events.EventBus.from_event_bus_arn(self, "MonitorBus", target_bus_arn),
                role=self.role,
            )
        )
