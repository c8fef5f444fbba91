"""The synthesized monitor, stood up on the emulator: real EventBridge routing, SNS and SQS.

moto cannot invoke Lambda without Docker, so the rule's target is a queue and this module plays the
Lambda service: it invokes the asset's handler for each delivered event, retries a failed
invocation as the template's async config says, then sends it to the on-failure destination.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .cloudtrail import RecordedS3
from .emulator import Emulator
from .function import LOCAL_FUNCTION_NAME, Invocation, LocalFunction
from .template import SynthesizedMonitor, TemplateError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

FUNCTION_INBOX = "local-function-invocations"
ALERT_SUBSCRIBER = "local-alert-subscriber"


@dataclass(frozen=True)
class ReceivedAlert:
    """An alert as an SQS subscriber of the topic receives it."""

    subject: str
    document: dict[str, Any]
    attributes: dict[str, str]


class LocalPipeline:
    """One deployment of the monitor on the emulator.

    Its resources carry a unique prefix and it has its own event bus (standing in for the account's
    default bus), so several deployments can share one emulator without seeing each other.
    """

    def __init__(self, monitor: SynthesizedMonitor, emulator: Emulator) -> None:
        self.monitor = monitor
        self.emulator = emulator
        self.prefix = f"m{uuid.uuid4().hex[:8]}"
        session = emulator.session()
        self.s3 = session.client("s3", endpoint_url=emulator.endpoint)
        self.kms = session.client("kms", endpoint_url=emulator.endpoint)
        self._events: EventBridgeClient = session.client("events", endpoint_url=emulator.endpoint)
        self._sns: SNSClient = session.client("sns", endpoint_url=emulator.endpoint)
        self._sqs: SQSClient = session.client("sqs", endpoint_url=emulator.endpoint)
        self._attributes: dict[str, dict[str, str]] = {}
        self._deploy()
        self.recorded_s3 = RecordedS3(
            self.s3, self.put_cloudtrail_event, emulator.account, emulator.region
        )

    # -- "cdk deploy" ---------------------------------------------------------------------------

    def _deploy(self) -> None:
        for logical_id in self.monitor.logical_ids("AWS::SNS::Topic"):
            name = f"{self.prefix}-{logical_id}"
            arn = self._sns.create_topic(Name=name)["TopicArn"]
            self._attributes[logical_id] = {"Ref": arn, "TopicArn": arn, "TopicName": name}
        for logical_id in self.monitor.logical_ids("AWS::SQS::Queue"):
            self._attributes[logical_id] = self._create_queue(f"{self.prefix}-{logical_id}")
        self._inbox = self._create_queue(f"{self.prefix}-{FUNCTION_INBOX}")
        self._subscriber = self._create_queue(f"{self.prefix}-{ALERT_SUBSCRIBER}")

        self.bus_name = f"{self.prefix}-bus"
        self._events.create_event_bus(Name=self.bus_name)
        rule_name = f"{self.prefix}-{self.monitor.rule_id}"
        self._events.put_rule(
            Name=rule_name,
            EventBusName=self.bus_name,
            EventPattern=json.dumps(self.monitor.event_pattern),
            State="ENABLED",
        )
        self._events.put_targets(
            Rule=rule_name,
            EventBusName=self.bus_name,
            Targets=[{"Id": "function", "Arn": self._inbox["Arn"]}],
        )
        self._sns.subscribe(
            TopicArn=self.resolve(self.monitor.environment["ALERT_TOPIC_ARN"]),
            Protocol="sqs",
            Endpoint=self._subscriber["Arn"],
        )

    def _create_queue(self, name: str) -> dict[str, str]:
        url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return {"Ref": url, "QueueUrl": url, "Arn": arn["Attributes"]["QueueArn"]}

    def resolve(self, value: Any) -> str:
        """A template value (literal, Ref or Fn::GetAtt) as deployed on the emulator."""
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and "Ref" in value:
            return self._attribute(value["Ref"], "Ref")
        if isinstance(value, Mapping) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return self._attribute(logical_id, attribute)
        raise TemplateError(f"cannot resolve {value!r} locally")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        try:
            return self._attributes[logical_id][attribute]
        except KeyError:
            raise TemplateError(f"{logical_id}.{attribute} is not deployed locally") from None

    def function_environment(
        self, overrides: Mapping[str, str] | None = None, function_id: str | None = None
    ) -> dict[str, str]:
        """The template's environment, resolved, plus what the Lambda service itself would set."""
        variables = self.monitor.environment_of(function_id or self.monitor.function_id)
        environment = {k: self.resolve(v) for k, v in variables.items()}
        return {
            **self.emulator.environment(),
            "AWS_LAMBDA_FUNCTION_NAME": LOCAL_FUNCTION_NAME,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            **environment,
            **(overrides or {}),
        }

    def start_function(self, overrides: Mapping[str, str] | None = None) -> LocalFunction:
        """A fresh container of the synthesized event function (a cold start)."""
        return self._container(self.monitor.function_id, overrides)

    def start_sweep_function(self, overrides: Mapping[str, str] | None = None) -> LocalFunction:
        """A fresh container of the synthesized sweep function."""
        if self.monitor.sweep_function_id is None:
            raise TemplateError("the template has no sweep (synthesized with sweepSchedule=off)")
        return self._container(self.monitor.sweep_function_id, overrides)

    def _container(self, function_id: str, overrides: Mapping[str, str] | None) -> LocalFunction:
        return LocalFunction(
            self.monitor.asset_dir,
            self.monitor.handler_of(function_id),
            self.function_environment(overrides, function_id),
            function_arn=(
                f"arn:aws:lambda:{self.emulator.region}:{self.emulator.account}:function:"
                f"{self.prefix}-{function_id}"
            ),
            timeout_seconds=self.monitor.timeout_of(function_id),
        )

    def scheduled_event(self) -> dict[str, Any]:
        """The event an EventBridge schedule sends its target (moto does not run schedules)."""
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.emulator.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.emulator.region,
            "resources": [
                f"arn:aws:events:{self.emulator.region}:{self.emulator.account}:rule/"
                f"{self.prefix}-sweep"
            ],
            "detail": {},
        }

    # -- CloudTrail and the Lambda service --------------------------------------------------------

    def put_cloudtrail_event(self, detail: Mapping[str, Any]) -> None:
        """Puts the event on the bus as CloudTrail would; the rule decides where it goes."""
        response = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self.bus_name,
                    "Source": "aws.s3",
                    "DetailType": "AWS API Call via CloudTrail",
                    "Detail": json.dumps(detail),
                    "Resources": [],
                    "Time": datetime.now(UTC),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {response['Entries']}")

    def delivered_events(self) -> list[dict[str, Any]]:
        """Takes the events the rule routed to the function so far."""
        events = []
        for message in self._drain(self._inbox["QueueUrl"]):
            event = json.loads(message["Body"])
            # moto's envelope lacks the "account" field that EventBridge always sets.
            event.setdefault("account", self.emulator.account)
            events.append(event)
        return events

    def deliver(self, function: LocalFunction) -> list[Invocation]:
        """Invokes the function for every event the rule delivered, as Lambda's async mode does."""
        config = self.monitor.async_config
        attempts = 1 + int(config.get("MaximumRetryAttempts", 2))
        destination = config["DestinationConfig"]["OnFailure"]["Destination"]
        invocations = []
        for event in self.delivered_events():
            invocation = function.invoke(event)
            for _ in range(attempts - 1):
                if invocation.ok:
                    break
                invocation = function.invoke(event)
            if not invocation.ok:
                self._send_to_destination(destination, event, invocation, attempts)
            invocations.append(invocation)
        return invocations

    def _send_to_destination(
        self, destination: Any, event: Any, invocation: Invocation, attempts: int
    ) -> None:
        # The destination is the queue's Fn::GetAtt Arn; sending needs the same queue's URL.
        queue_url = self._attribute(destination["Fn::GetAtt"][0], "QueueUrl")
        error_type, _, message = (invocation.error or "").partition(": ")
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": error_type, "errorMessage": message},
        }
        self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    # -- what subscribers and operators see -------------------------------------------------------

    def received_alerts(self) -> list[ReceivedAlert]:
        alerts = []
        for message in self._drain(self._subscriber["QueueUrl"]):
            notification = json.loads(message["Body"])
            alerts.append(
                ReceivedAlert(
                    subject=notification.get("Subject", ""),
                    document=json.loads(notification["Message"]),
                    attributes={
                        name: attribute["Value"]
                        for name, attribute in notification.get("MessageAttributes", {}).items()
                    },
                )
            )
        return alerts

    def failure_queue_messages(self) -> list[dict[str, Any]]:
        """Messages kept in the failure queue: the body parsed, the attributes flattened."""
        url = self.resolve(self.monitor.environment["FAILURE_QUEUE_URL"])
        kept = []
        for message in self._drain(url):
            attributes = {
                name: value["StringValue"]
                for name, value in message.get("MessageAttributes", {}).items()
            }
            kept.append({"body": json.loads(message["Body"]), "attributes": attributes})
        return kept

    def _drain(self, queue_url: str) -> list[Any]:
        messages: list[Any] = []
        while True:
            batch = self._sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)
            self._sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
