"""The synthesized monitor, stood up on the emulator: real EventBridge routing, SNS, SQS,
DynamoDB and S3, in as many accounts and regions as the templates name.

moto cannot invoke Lambda without Docker, so each rule that targets a function targets a queue
instead and this module plays the Lambda service: it runs each function from its asset in
``cdk.out`` as Lambda does (``local.lambda_runtime``: the runtime's Python, the asset then the
Powertools layer, out of this process), invokes it for each delivered event (retrying and keeping
failures as the template's async config says), feeds the sweep worker from its work queue as an
event source mapping would, and gives every function credentials of its own role. It also plays
StackSets: ``deploy_member`` puts the member templates into another account, with the parameters
the central template gives its StackSets.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import boto3
from botocore.exceptions import ClientError

from functions.drift_monitor.domain.discovery import parameter_name

from .cloudtrail import RecordedS3, actor_in, kms_call_detail, s3_call_detail
from .emulator import EXPRESS_CONTROL, Emulator, member_admin
from .function import Invocable, Invocation, feed_from_queue
from .journal import JOURNAL_PATH
from .lambda_runtime import LambdaContainer
from .stack_sets import INSTANCES_PATH
from .sts_trust import principal_arn
from .template import STACK_NAME, SynthesizedMonitor, Template, TemplateError, resolve

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

FUNCTION_INBOX = "local-function-invocations"
ALERT_SUBSCRIBER = "local-alert-subscriber"
CHAT_SUBSCRIBER = "local-chat-subscriber"


@dataclass(frozen=True)
class ReceivedAlert:
    """An alert as an SQS subscriber of the topic receives it."""

    subject: str
    document: dict[str, Any]
    attributes: dict[str, str]


class LocalPipeline:
    """One deployment of the monitor on the emulator.

    Its resources carry a unique prefix and each account and region it uses gets an event bus of
    its own standing in for the default bus, so several deployments can share one emulator
    without seeing each other.
    """

    def __init__(self, monitor: SynthesizedMonitor, emulator: Emulator) -> None:
        self.monitor = monitor
        self.emulator = emulator
        self.account = emulator.account
        self.region = emulator.region
        self.prefix = f"m{uuid.uuid4().hex[:8]}"
        # The stacks as CloudFormation would name them, unique per deployment on one emulator.
        self.stack_name = f"{self.prefix}-{STACK_NAME}"
        self.bus_name = f"{self.prefix}-bus"
        self._session = emulator.session()
        self.s3 = self._client("s3")
        self.kms = self._client("kms")
        self._events: EventBridgeClient = self._client("events")
        self._sns: SNSClient = self._client("sns")
        self._sqs: SQSClient = self._client("sqs")
        self._cloudwatch = self._client("cloudwatch")
        self._refs: dict[str, Any] = {
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::Region": self.region,
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.members: list[str] = []
        # The heartbeat schedules deployed, by (account, region): each one's universal target
        # request (moto keeps schedules but never runs them; ``beat`` does what one run does).
        self.heartbeats: dict[tuple[str, str], dict[str, Any]] = {}
        self.manifest: dict[str, Any] = {}  # what the discovery parameter holds
        # The forwarding rule of each account and region, by name.
        self.forwarder_rules: dict[tuple[str, str], str] = {}
        self._deploy()
        self.recorded_s3 = RecordedS3(
            self.s3,
            self.put_cloudtrail_event,
            self.account,
            self.region,
            self._client("s3tables"),
            vectors=self._client("s3vectors"),
        )

    def _client(self, service: str, region: str | None = None) -> Any:
        return self._session.client(  # type: ignore[call-overload]
            service,
            region_name=region or self.region,
            endpoint_url=self.emulator.endpoint,
            config=EXPRESS_CONTROL if service == "s3" else None,
        )

    # -- "cdk deploy" ---------------------------------------------------------------------------

    def _deploy(self) -> None:
        for logical_id in self.monitor.logical_ids("AWS::SNS::Topic"):
            name = f"{self.prefix}-{logical_id}"
            arn = self._sns.create_topic(Name=name)["TopicArn"]
            self._remember(logical_id, arn, TopicArn=arn, TopicName=name)
        queues = self.monitor.logical_ids("AWS::SQS::Queue")
        for logical_id in queues:
            queue = self._create_queue(f"{self.prefix}-{logical_id}")
            self._remember(logical_id, queue["QueueUrl"], **queue)
        for logical_id in queues:  # now that every dead-letter queue exists
            self._configure_queue(logical_id)
        for logical_id in self.monitor.logical_ids("AWS::DynamoDB::Table"):
            self._create_table(logical_id)
        for logical_id in self.monitor.logical_ids("AWS::KMS::Key"):
            arn = self.kms.create_key(Description=f"{self.prefix}-{logical_id}")["KeyMetadata"]
            self._remember(logical_id, arn["KeyId"], Arn=arn["Arn"])
        for logical_id in self.monitor.logical_ids("AWS::S3::Bucket"):
            self._create_bucket(logical_id)
        self._remember_heartbeat(self.monitor, self._refs, self.account, self.region)
        identity = self._client("sts").get_caller_identity()
        self._caller = principal_arn(identity["Arn"], identity["Account"])
        for function_id in self.monitor.logical_ids("AWS::Lambda::Function"):
            self._create_function_role(function_id)
            self._refs[function_id] = self.function_name(function_id)

        self._inbox = self._create_queue(f"{self.prefix}-{FUNCTION_INBOX}")
        self._subscriber = self._create_queue(f"{self.prefix}-{ALERT_SUBSCRIBER}")
        self._sns.subscribe(
            TopicArn=self.resolve(self.monitor.environment["ALERT_TOPIC_ARN"]),
            Protocol="sqs",
            Endpoint=self._subscriber["Arn"],
        )
        # §15: what Chatbot receives (the raw custom notification), when chat is configured.
        self._chat_subscriber: dict[str, str] | None = None
        if "CHAT_TOPIC_ARN" in self.monitor.environment:
            self._chat_subscriber = self._create_queue(f"{self.prefix}-{CHAT_SUBSCRIBER}")
            self._sns.subscribe(
                TopicArn=self.resolve(self.monitor.environment["CHAT_TOPIC_ARN"]),
                Protocol="sqs",
                Endpoint=self._chat_subscriber["Arn"],
                Attributes={"RawMessageDelivery": "true"},
            )
        self._stand_in_bus(self._events)
        self._put_rule(
            self._events,
            self.bus_name,
            f"{self.prefix}-{self.monitor.rule_id}",
            self.monitor.event_pattern,
            {"Id": "function", "Arn": self._inbox["Arn"]},
        )
        for logical_id in self.monitor.logical_ids("AWS::Events::EventBus"):
            name = f"{self.prefix}-{logical_id}"
            arn = self._events.create_event_bus(Name=name)["EventBusArn"]
            self._remember(logical_id, name, Arn=arn, Name=name)
        if self.monitor.new_bucket_rule_id is not None:
            self._route_to_grace_queue(self.bus_name, self.monitor.new_bucket_rule_id)
        if self.monitor.member_rule_id is not None:
            bus = self.resolve(self.monitor.properties(self.monitor.member_rule_id)["EventBusName"])
            self._put_rule(
                self._events,
                bus,
                f"{self.prefix}-{self.monitor.member_rule_id}",
                self.monitor.pattern_of(self.monitor.member_rule_id),
                {"Id": "function", "Arn": self._inbox["Arn"]},
            )
        if self.monitor.member_new_bucket_rule_id is not None:
            rule_id = self.monitor.member_new_bucket_rule_id
            bus = self.resolve(self.monitor.properties(rule_id)["EventBusName"])
            self._route_to_grace_queue(bus, rule_id)
        for region, template in self.monitor.forwarders.items():
            self._deploy_forwarder(self._session, self.account, region, template, {})
        self._put_schedules()
        self._create_stacks()
        self._create_trail()
        self._write_manifest()

    def _route_to_grace_queue(self, bus: str, rule_id: str) -> None:
        """Bucket creations to the delay queue the template names: moto's SQS holds each message
        for the queue's DelaySeconds, as SQS does."""
        queue_id = self.monitor.target_of(rule_id)
        self._put_rule(
            self._events,
            bus,
            f"{self.prefix}-{rule_id}",
            self.monitor.pattern_of(rule_id),
            {"Id": "grace", "Arn": self._refs[f"{queue_id}.Arn"]},
        )

    def _remember(self, logical_id: str, ref: str, **attributes: str) -> None:
        self._refs[logical_id] = ref
        for attribute, value in attributes.items():
            self._refs[f"{logical_id}.{attribute}"] = value

    def _create_queue(self, name: str) -> dict[str, str]:
        url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return {"QueueUrl": url, "Arn": arn["Attributes"]["QueueArn"]}

    def _configure_queue(self, logical_id: str) -> None:
        properties = self.monitor.properties(logical_id)
        attributes: dict[Any, str] = {}
        for attribute in ("VisibilityTimeout", "DelaySeconds"):
            if attribute in properties:
                attributes[attribute] = str(properties[attribute])
        if "RedrivePolicy" in properties:
            attributes["RedrivePolicy"] = json.dumps(
                resolve(properties["RedrivePolicy"], self._refs)
            )
        if attributes:
            self._sqs.set_queue_attributes(QueueUrl=self._refs[logical_id], Attributes=attributes)

    def _create_table(self, logical_id: str) -> None:
        properties = self.monitor.properties(logical_id)
        name = f"{self.prefix}-{logical_id}"
        dynamodb = self._client("dynamodb")
        indexes = properties.get("GlobalSecondaryIndexes")
        response = dynamodb.create_table(
            TableName=name,
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
        )
        self._remember(logical_id, name, Arn=response["TableDescription"]["TableArn"])

    def _create_bucket(self, logical_id: str) -> None:
        """The bucket with the default encryption and tags its template gives it."""
        properties = self.monitor.properties(logical_id)
        if "BucketName" in properties:  # named by the template: the heartbeat's
            name = self.resolve(properties["BucketName"])
            _create_named_bucket(self.s3, name, self.region)
        else:
            name = f"{self.prefix}-{logical_id}".lower()[:63]
            self.s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region}
            )
        self._remember(logical_id, name, Arn=f"arn:aws:s3:::{name}")
        encryption = resolve(properties.get("BucketEncryption"), self._refs)
        if encryption:
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    "BucketKeyEnabled": rule.get("BucketKeyEnabled", False),
                    **(
                        {"BlockedEncryptionTypes": rule["BlockedEncryptionTypes"]}
                        if "BlockedEncryptionTypes" in rule
                        else {}
                    ),
                }
                for rule in encryption["ServerSideEncryptionConfiguration"]
            ]
            self.s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        if properties.get("Tags"):
            self.s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": properties["Tags"]})

    def _create_function_role(self, function_id: str) -> None:
        """The function's role, trusted as in the template and by the local Lambda service (this
        pipeline, in the role's account), which hands the function that role's credentials."""
        if "Role" not in self.monitor.properties(function_id):
            return
        role_id = self.monitor.role_of(function_id)
        document = self.monitor.properties(role_id)["AssumeRolePolicyDocument"]
        trust = resolve(document, self._refs)
        trust["Statement"].append(
            {
                "Sid": "LocalLambdaService",
                "Effect": "Allow",
                "Principal": {"AWS": self._caller},
                "Action": "sts:AssumeRole",
            }
        )
        if role_id not in self._refs:
            name = f"{self.prefix}-{role_id}"[:64]
            role = self._client("iam").create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps(trust)
            )["Role"]
            self._remember(role_id, name, Arn=role["Arn"])

    def _stand_in_bus(self, events: Any) -> str:
        """The account and region's stand-in for its default bus."""
        return str(events.create_event_bus(Name=self.bus_name)["EventBusArn"])

    def _put_rule(
        self, events: Any, bus: str, name: str, pattern: dict[str, Any], target: dict[str, str]
    ) -> None:
        events.put_rule(
            Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED"
        )
        events.put_targets(Rule=name, EventBusName=bus, Targets=[target])
        rule_id = name.removeprefix(f"{self.prefix}-")
        if rule_id in self.monitor.resources:
            # Ref of a rule: its name, "<bus>|<name>" on another bus than the default.
            self._refs[rule_id] = name if bus == self.bus_name else f"{bus}|{name}"

    def _put_schedules(self) -> None:
        """The scheduled rules (the sweep's, the heartbeat's watchdog), which moto never runs:
        ``run_sweep`` and ``watchdog_event`` stand in for their runs."""
        for rule_id in self.monitor.logical_ids("AWS::Events::Rule"):
            properties = self.monitor.properties(rule_id)
            if "ScheduleExpression" not in properties:
                continue
            # Only the default bus has schedules (moto refuses them elsewhere, as EventBridge
            # does); the name is this deployment's own.
            name = f"{self.prefix}-{rule_id}"
            self._events.put_rule(
                Name=name, ScheduleExpression=properties["ScheduleExpression"], State="ENABLED"
            )
            function_id = self.monitor.target_of(rule_id)
            arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{self._refs[function_id]}"
            self._events.put_targets(Rule=name, Targets=[{"Id": "function", "Arn": arn}])
            self._refs[rule_id] = name

    def _create_stacks(self) -> None:
        """Stand-ins for the stacks themselves (what was deployed is the resources above): the
        doctor asks CloudFormation whether they exist and are complete."""
        self.create_stack(self.stack_name, self.region)
        for region in self.monitor.forwarders:
            self.create_stack(self.forwarder_stack(region), region)

    def create_stack(self, name: str, region: str) -> None:
        handle = {"Type": "AWS::CloudFormation::WaitConditionHandle"}
        self._client("cloudformation", region).create_stack(
            StackName=name, TemplateBody=json.dumps({"Resources": {"Deployed": handle}})
        )

    def forwarder_stack(self, region: str) -> str:
        return f"{self.stack_name}-{region}"

    def stack_set_name(self, logical_id: str) -> str:
        """A StackSet's name as the template gives it, under this deployment's stack name."""
        name = str(self.monitor.properties(logical_id)["StackSetName"])
        return name.replace(STACK_NAME, self.stack_name, 1)

    def _create_trail(self) -> None:
        """A multi-region trail of the account's management events, as ``Before you deploy``
        asks (moto logs nothing: ``RecordedS3`` plays CloudTrail)."""
        name = f"{self.prefix}-trail"
        # Its logs go to a bucket of the monitor's own (already counted by every sweep), or to
        # one of its own when the template has none.
        buckets = self.monitor.logical_ids("AWS::S3::Bucket")
        bucket = self._refs[buckets[0]] if buckets else name
        if not buckets:
            self.s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region}
            )
        cloudtrail = self._client("cloudtrail")
        cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=True)
        cloudtrail.start_logging(Name=name)
        self.trail_name = name

    def _write_manifest(self) -> None:
        """The discovery parameter, as CloudFormation would resolve it, naming what this
        deployment made (its stacks, its stand-in for the default bus)."""
        parameters = self.monitor.logical_ids("AWS::SSM::Parameter")
        if not parameters:
            return  # a template made by hand, not by the app: nothing for the doctor to find
        manifest = json.loads(self.resolve(self.monitor.properties(parameters[0])["Value"]))
        manifest["stack"] = self.stack_name
        manifest["defaultBus"] = self.bus_name
        if manifest.get("organization"):
            manifest["organization"]["stackSets"] = [
                self.stack_set_name(logical_id)
                for logical_id in self.monitor.logical_ids("AWS::CloudFormation::StackSet")
            ]
        self.manifest = manifest
        self._client("ssm").put_parameter(
            Name=parameter_name(self.stack_name), Value=json.dumps(manifest), Type="String"
        )

    @contextmanager
    def serve(self, function: Invocable, every: float = 0.2) -> Iterator[None]:
        """AWS running by itself, for a program that is not a test (``doctor --live``): the S3
        bucket writes of any client (the emulator's journal) logged as CloudTrail would, in the
        accounts and regions this deployment watches, and every event its rules route
        delivered to ``function`` as Lambda would, until the block ends."""
        stop = threading.Event()
        position = self._journal(0)[1]
        errors: list[BaseException] = []

        def run() -> None:
            nonlocal position
            while not stop.wait(every):
                try:
                    entries, position = self._journal(position)
                    for entry in entries:
                        self._log_like_cloudtrail(entry)
                    self.deliver(function)
                except Exception as error:
                    errors.append(error)
                    return

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        if errors:
            raise errors[0]

    def _journal(self, after: int) -> tuple[list[dict[str, str]], int]:
        url = f"{self.emulator.endpoint}{JOURNAL_PATH}?after={after}"
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.loads(response.read())
        return list(answer["entries"]), int(answer["next"])

    def _log_like_cloudtrail(self, entry: Mapping[str, str]) -> None:
        account, region = entry["account"], entry["region"]
        if account not in (self.account, *self.members) or (region not in self.watched_regions):
            return
        session = self._session if account == self.account else self.member_session(account)
        events = session.client("events", region_name=region, endpoint_url=self.emulator.endpoint)
        detail = s3_call_detail(
            entry["eventName"],
            entry["bucket"],
            account=account,
            region=region,
            actor_arn=actor_in(account),
        )
        _put_cloudtrail_event(events, self.bus_name, detail)

    @property
    def watched_regions(self) -> tuple[str, ...]:
        return (self.region, *self.monitor.forwarders)

    @contextmanager
    def lambda_service(self) -> Iterator[str]:
        """A local Lambda Invoke endpoint for this deployment's functions, on 127.0.0.1 (moto
        runs no function): ``POST /2015-03-31/functions/<name>/invocations`` is answered by a
        container of that function, with ``X-Amz-Function-Error`` when it fails (Lambda API
        Reference, Invoke). Yields its URL, for ``AWS_ENDPOINT_URL_LAMBDA``."""
        by_name = {
            self.function_name(function_id): function_id
            for function_id in self.monitor.logical_ids("AWS::Lambda::Function")
        }
        containers: dict[str, LambdaContainer] = {}
        pipeline = self

        class Invoke(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                match = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", self.path)
                name = unquote(match.group(1)).rsplit(":", 1)[-1] if match else ""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if name not in by_name:
                    self._answer(404, {"Type": "User", "message": f"Function not found: {name}"})
                    return
                if name not in containers:
                    containers[name] = pipeline.start(by_name[name])
                invocation = containers[name].invoke(json.loads(body or b"{}"))
                if invocation.ok:
                    self._answer(200, invocation.response)
                    return
                error_type, _, message = (invocation.error or "").partition(": ")
                self._answer(
                    200,
                    {"errorType": error_type, "errorMessage": message},
                    {"X-Amz-Function-Error": "Unhandled"},
                )

            def _answer(
                self, status: int, payload: Any, headers: Mapping[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for header, value in {
                    "Content-Type": "application/json",
                    **(headers or {}),
                }.items():
                    self.send_header(header, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            for container in containers.values():
                container.close()

    def function_name(self, function_id: str) -> str:
        return f"{self.prefix}-{function_id}"

    def _deploy_forwarder(
        self,
        session: boto3.Session,
        account: str,
        region: str,
        template: Template,
        parameters: Mapping[str, Any],
    ) -> None:
        """A forwarder template in ``account`` and ``region``: its rule on the stand-in default
        bus there, targeting the bus its template names, through a role made from its own."""
        refs = {
            **parameters,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::Region": region,
            "AWS::URLSuffix": "amazonaws.com",
        }
        (rule_id,) = template.s3_rules()
        (target,) = template.properties(rule_id)["Targets"]
        role_id = target["RoleArn"]["Fn::GetAtt"][0]  # the forwarding role (not the heartbeat's)
        iam = session.client("iam", endpoint_url=self.emulator.endpoint)
        role_name = f"{self.prefix}-forwarder-{region}"
        role = iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(
                resolve(template.properties(role_id)["AssumeRolePolicyDocument"], refs)
            ),
        )["Role"]
        for policy_id in template.logical_ids("AWS::IAM::Policy"):
            if {"Ref": role_id} not in template.properties(policy_id)["Roles"]:
                continue
            iam.put_role_policy(
                RoleName=role_name,
                PolicyName=policy_id,
                PolicyDocument=json.dumps(
                    resolve(template.properties(policy_id)["PolicyDocument"], refs)
                ),
            )
        for bucket_id in template.logical_ids("AWS::S3::Bucket"):  # the heartbeat's
            name = resolve(template.properties(bucket_id)["BucketName"], refs)
            s3 = session.client("s3", region_name=region, endpoint_url=self.emulator.endpoint)
            _create_named_bucket(s3, name, region)
            refs[bucket_id] = name
        self._remember_heartbeat(template, refs, account, region)
        events = session.client("events", region_name=region, endpoint_url=self.emulator.endpoint)
        self._stand_in_bus(events)
        # As CloudFormation names it: the stack's name first (the doctor lists rules by it).
        stack = self.forwarder_stack(region) if account == self.account else self.prefix
        rule_name = f"{stack}-{rule_id}"[:64]
        self.forwarder_rules[(account, region)] = rule_name
        self._put_rule(
            events,
            self.bus_name,
            rule_name,
            template.properties(rule_id)["EventPattern"],
            {
                "Id": "monitor",
                "Arn": self._local_bus(resolve(target["Arn"], refs)),
                "RoleArn": role["Arn"],
            },
        )

    def _remember_heartbeat(
        self, template: Template, refs: Mapping[str, Any], account: str, region: str
    ) -> None:
        for schedule_id in template.logical_ids("AWS::Scheduler::Schedule"):
            target = template.properties(schedule_id)["Target"]
            if not str(resolve(target["Arn"], {"AWS::Partition": "aws"})).endswith(
                ":aws-sdk:s3:putBucketEncryption"
            ):
                raise TemplateError(f"{schedule_id} is not the heartbeat's universal target")
            self.heartbeats[(account, region)] = json.loads(resolve(target["Input"], refs))

    def beat(
        self, account: str | None = None, region: str | None = None, at: datetime | None = None
    ) -> None:
        """What one run of the heartbeat schedules does: their ``PutBucketEncryption`` in each
        account and region (or only ``account``, ``region``), and the CloudTrail event each
        logs there, at ``at`` (default: now; the watchdog's clock is its event's time)."""
        for (where, in_region), request in self.heartbeats.items():
            if account not in (None, where) or region not in (None, in_region):
                continue
            recorder = self.s3_in(in_region, where)
            recorder.event_time = at
            recorder.put_encryption_configuration(
                request["Bucket"], request["ServerSideEncryptionConfiguration"]
            )

    def switch_forwarder(self, account: str, region: str, *, enabled: bool) -> None:
        """Disables (or enables again) the forwarding rule of ``account`` in ``region``: a piece
        of the event path broken on purpose."""
        session = self._session if account == self.account else self.member_session(account)
        events = session.client("events", region_name=region, endpoint_url=self.emulator.endpoint)
        switch = events.enable_rule if enabled else events.disable_rule
        switch(Name=self.forwarder_rules[(account, region)], EventBusName=self.bus_name)

    def watchdog_event(self, at: datetime | None = None) -> dict[str, Any]:
        """What the watchdog rule's input transformer gives the event function."""
        if self.monitor.watchdog_rule_id is None:
            raise TemplateError("the template has no heartbeat (synthesized without heartbeat)")
        moment = at or datetime.now(UTC)
        return {"watchdog": "heartbeat", "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def _local_bus(self, arn: str) -> str:
        """A default bus ARN means that account's stand-in; any other bus is the one deployed."""
        if arn.endswith(":event-bus/default"):
            return arn.replace(":event-bus/default", f":event-bus/{self.bus_name}")
        return arn

    def resolve(self, value: Any) -> str:
        """A template value (literal, Ref, Fn::GetAtt or Fn::Join) as deployed on the emulator."""
        resolved = resolve(value, self._refs)
        if not isinstance(resolved, str):
            raise TemplateError(f"{value!r} does not resolve to a string")
        return resolved

    # -- StackSets ------------------------------------------------------------------------------

    def deploy_member(self, account: str) -> None:
        """What the StackSets deploy in a member account: the reader role once, a forwarder in
        each of their regions, with the parameters the central template gives them."""
        reader, forwarder = self.monitor.member_reader, self.monitor.member_forwarder
        if reader is None or forwarder is None:
            raise TemplateError("the template has no member templates (no organizationId)")
        session = self.member_session(account)
        parameters, _ = self.monitor.stack_set_parameters(reader)
        refs = {
            **self._member_parameters(reader, parameters),
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::Region": self.region,
        }
        iam = session.client("iam", endpoint_url=self.emulator.endpoint)
        for role_id in reader.logical_ids("AWS::IAM::Role"):
            properties = reader.properties(role_id)
            iam.create_role(
                RoleName=properties["RoleName"],
                AssumeRolePolicyDocument=json.dumps(
                    resolve(properties["AssumeRolePolicyDocument"], refs)
                ),
            )
            for policy in properties.get("Policies", []):
                iam.put_role_policy(
                    RoleName=properties["RoleName"],
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(resolve(policy["PolicyDocument"], refs)),
                )
        parameters, regions = self.monitor.stack_set_parameters(forwarder)
        for region in regions:
            self._deploy_forwarder(
                session, account, region, forwarder, self._member_parameters(forwarder, parameters)
            )
        self.members.append(account)
        for template in (reader, forwarder):
            logical_id, _, instance_regions = self.monitor.stack_set_of(template)
            for region in instance_regions:
                self.set_stack_instance(self.stack_set_name(logical_id), account, region, "CURRENT")

    def set_stack_instance(
        self, stack_set: str, account: str, region: str, status: str, reason: str = ""
    ) -> None:
        """Records a StackSet instance as CloudFormation would list it (``local/stack_sets``)."""
        request = urllib.request.Request(
            f"{self.emulator.endpoint}{INSTANCES_PATH}",
            data=json.dumps(
                {
                    "stackSetName": stack_set,
                    "account": account,
                    "region": region,
                    "status": status,
                    "statusReason": reason,
                }
            ).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def delete_reader_role(self, account: str) -> None:
        """Removes the reader role the StackSet put in ``account`` (an administrator's mistake,
        or a member that left the StackSet's targets)."""
        assert self.monitor.member_reader is not None
        iam = self.member_session(account).client("iam", endpoint_url=self.emulator.endpoint)
        for role_id in self.monitor.member_reader.logical_ids("AWS::IAM::Role"):
            properties = self.monitor.member_reader.properties(role_id)
            for policy in properties.get("Policies", []):
                iam.delete_role_policy(
                    RoleName=properties["RoleName"], PolicyName=policy["PolicyName"]
                )
            iam.delete_role(RoleName=properties["RoleName"])

    def _member_parameters(self, template: Template, values: Mapping[str, Any]) -> dict[str, Any]:
        """StackSet parameter values, resolved here, typed as the member template declares."""
        declared = template.parameters
        parameters: dict[str, Any] = {}
        for name, value in values.items():
            resolved = self.resolve(value)
            if declared.get(name, {}).get("Type") == "CommaDelimitedList":
                parameters[name] = resolved.split(",")
            else:
                parameters[name] = resolved
        return parameters

    def member_session(self, account: str) -> boto3.Session:
        """An administrator of ``account``, through the role Organizations creates there."""
        return member_admin(self.emulator, account).session()

    def s3_in(self, region: str, account: str | None = None) -> RecordedS3:
        """S3 calls in ``region`` of ``account`` (default: the monitor's), each followed by the
        CloudTrail event it would log there, on that account and region's default bus."""
        account = account or self.account
        session = self._session if account == self.account else self.member_session(account)
        events = session.client("events", region_name=region, endpoint_url=self.emulator.endpoint)
        s3 = session.client(
            "s3", region_name=region, endpoint_url=self.emulator.endpoint, config=EXPRESS_CONTROL
        )
        tables = session.client("s3tables", region_name=region, endpoint_url=self.emulator.endpoint)

        def publish(detail: Mapping[str, Any]) -> None:
            _put_cloudtrail_event(events, self.bus_name, detail)

        vectors = session.client(
            "s3vectors", region_name=region, endpoint_url=self.emulator.endpoint
        )
        return RecordedS3(s3, publish, account, region, tables, vectors=vectors)

    # -- the Lambda service ---------------------------------------------------------------------

    def function_environment(
        self, overrides: Mapping[str, str] | None = None, function_id: str | None = None
    ) -> dict[str, str]:
        """The template's environment, resolved, plus what the Lambda service itself would set."""
        variables = self.monitor.environment_of(function_id or self.monitor.function_id)
        environment = {k: self.resolve(v) for k, v in variables.items()}
        return {**self.emulator.environment(), **environment, **(overrides or {})}

    def start_function(self, overrides: Mapping[str, str] | None = None) -> LambdaContainer:
        """A fresh container of the synthesized event function (a cold start)."""
        return self.start(self.monitor.function_id, overrides)

    def start_sweep_function(self, overrides: Mapping[str, str] | None = None) -> LambdaContainer:
        """A fresh container of the synthesized sweep starter."""
        if self.monitor.sweep_function_id is None:
            raise TemplateError("the template has no sweep (synthesized with sweepSchedule=off)")
        return self.start(self.monitor.sweep_function_id, overrides)

    def start_sweep_worker(self, overrides: Mapping[str, str] | None = None) -> LambdaContainer:
        """A fresh container of the synthesized sweep worker."""
        if self.monitor.worker_function_id is None:
            raise TemplateError("the template has no sweep (synthesized with sweepSchedule=off)")
        return self.start(self.monitor.worker_function_id, overrides)

    def start(
        self, function_id: str, overrides: Mapping[str, str] | None = None
    ) -> LambdaContainer:
        """A fresh container of the function ``function_id`` of the template, with its own
        role's credentials; ``overrides`` replace variables of its environment."""
        return LambdaContainer(
            self.monitor.asset_dir_of(function_id),
            self.monitor.handler_of(function_id),
            {
                **self.function_environment(None, function_id),
                **self._role_credentials(function_id),
                **(overrides or {}),
            },
            function_arn=(
                f"arn:aws:lambda:{self.region}:{self.account}:function:"
                f"{self.function_name(function_id)}"
            ),
            timeout_seconds=self.monitor.timeout_of(function_id),
            memory_mb=self.monitor.memory_of(function_id),
            on_invoked=lambda invocation: self._count(function_id, invocation),
        )

    def _count(self, function_id: str, invocation: Invocation) -> None:
        """What Lambda puts in CloudWatch for each invocation (AWS/Lambda, by function name)."""
        dimensions = [{"Name": "FunctionName", "Value": self.function_name(function_id)}]
        self._cloudwatch.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 1.0},
                {
                    "MetricName": "Errors",
                    "Dimensions": dimensions,
                    "Value": 0.0 if invocation.ok else 1.0,
                },
            ],
        )

    def _role_credentials(self, function_id: str) -> dict[str, str]:
        role_arn = self._refs[f"{self.monitor.role_of(function_id)}.Arn"]
        credentials = self._client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=f"{self.prefix}-{function_id}"[:64]
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def scheduled_event(self) -> dict[str, Any]:
        """The event an EventBridge schedule sends its target (moto does not run schedules)."""
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{self.account}:rule/{self.prefix}-sweep"],
            "detail": {},
        }

    # -- CloudTrail and the Lambda service --------------------------------------------------------

    def put_cloudtrail_event(self, detail: Mapping[str, Any]) -> None:
        """Puts the event on the monitor account's bus as CloudTrail would; rules route it."""
        _put_cloudtrail_event(self._events, self.bus_name, detail)

    def kms_call(self, event_name: str, key_arn: str) -> None:
        """Makes a KMS call (``DisableKey``, ``EnableKey``, ...) on the emulator in the key's
        account and region, then puts the CloudTrail event KMS would log there, on that
        account and region's default bus (a member's forwarder sends it on)."""
        _, _, _, region, account, resource = key_arn.split(":", 5)
        session = self._session if account == self.account else self.member_session(account)
        client = session.client("kms", region_name=region, endpoint_url=self.emulator.endpoint)
        key_id = resource.removeprefix("key/")
        calls = {
            "DisableKey": lambda: client.disable_key(KeyId=key_id),
            "EnableKey": lambda: client.enable_key(KeyId=key_id),
            "ScheduleKeyDeletion": lambda: client.schedule_key_deletion(
                KeyId=key_id, PendingWindowInDays=7
            ),
            "CancelKeyDeletion": lambda: client.cancel_key_deletion(KeyId=key_id),
        }
        calls[event_name]()
        events = session.client("events", region_name=region, endpoint_url=self.emulator.endpoint)
        detail = kms_call_detail(event_name, key_arn, actor_arn=actor_in(account))
        _put_cloudtrail_event(events, self.bus_name, detail)

    def deliver_key_queue(self, function: Invocable) -> list[Invocation]:
        """The event function's SQS event source on the key queue (keyChecks): every chunk of
        re-evaluations a key event queued."""
        variables = self.monitor.environment_of(self.monitor.function_id)
        return feed_from_queue(
            function, self._sqs, self.resolve(variables["KEY_QUEUE_URL"]), self.region
        )

    def delivered_events(self) -> list[dict[str, Any]]:
        """Takes the events the rules routed to the function so far."""
        events = []
        for message in self._drain(self._inbox["QueueUrl"]):
            event = json.loads(message["Body"])
            # moto's envelope lacks the "account" field that EventBridge always sets.
            event.setdefault("account", self.account)
            events.append(event)
        return events

    def deliver(self, function: Invocable) -> list[Invocation]:
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
        queue_url = self._refs[f"{destination['Fn::GetAtt'][0]}.QueueUrl"]
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

    def run_sweep(
        self,
        starter: Mapping[str, str] | None = None,
        worker: Mapping[str, str] | None = None,
    ) -> list[Invocation]:
        """A scheduled sweep from start to digest: the starter once, then a worker container fed
        from the work queue until it is empty. ``starter`` and ``worker`` override each one's
        environment. Returns every invocation, the starter's first."""
        started = self.start_sweep_function(starter).invoke(self.scheduled_event())
        if not started.ok:
            return [started]
        return [started, *self.deliver_work(self.start_sweep_worker(worker))]

    def deliver_new_buckets(self, function: Invocable) -> list[Invocation]:
        """The event function's SQS event source on the grace queue: every creation whose delay
        has passed (the others stay invisible until then)."""
        rule_id = self.monitor.new_bucket_rule_id
        if rule_id is None:
            raise TemplateError("the template has no grace queue (newBucketGraceSeconds=0)")
        queue_url = self._refs[self.monitor.target_of(rule_id)]
        return feed_from_queue(function, self._sqs, queue_url, self.region)

    def deliver_work(self, worker: Invocable) -> list[Invocation]:
        """The worker's event source mapping: every message of the work queue, one at a time."""
        assert self.monitor.worker_function_id is not None
        variables = self.monitor.environment_of(self.monitor.worker_function_id)
        return feed_from_queue(
            worker, self._sqs, self.resolve(variables["WORK_QUEUE_URL"]), self.region
        )

    # -- what subscribers and operators see -------------------------------------------------------

    def chat_messages(self) -> list[dict[str, Any]]:
        """The custom notifications the chat topic delivered since the last call."""
        if self._chat_subscriber is None:
            raise TemplateError("the template has no chat topic (synthesized without 'chat')")
        return [json.loads(m["Body"]) for m in self._drain(self._chat_subscriber["QueueUrl"])]

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

    def report_objects(self) -> dict[str, bytes]:
        """Every object in the sweep's report bucket, by key."""
        assert self.monitor.worker_function_id is not None
        bucket = self.resolve(
            self.monitor.environment_of(self.monitor.worker_function_id)["REPORT_BUCKET"]
        )
        objects = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                body = self.s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                objects[entry["Key"]] = body
        return objects

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


def _create_named_bucket(s3: Any, name: str, region: str) -> None:
    """A bucket whose name the template gives. Deployments of one account on one emulator share
    it, as stacks of one account would (its name is its account and region)."""
    # us-east-1 takes no location constraint (S3 API Reference, CreateBucket).
    where = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    try:
        s3.create_bucket(Bucket=name, **where)
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise


def _put_cloudtrail_event(events: Any, bus: str, detail: Mapping[str, Any]) -> None:
    response = events.put_events(
        Entries=[
            {
                "EventBusName": bus,
                # aws.s3, aws.s3express or aws.s3tables, as EventBridge names CloudTrail's sources.
                "Source": "aws." + str(detail.get("eventSource", "s3.amazonaws.com")).split(".")[0],
                "DetailType": "AWS API Call via CloudTrail",
                "Detail": json.dumps(detail),
                "Resources": [],
                "Time": datetime.now(UTC),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the event: {response['Entries']}")
