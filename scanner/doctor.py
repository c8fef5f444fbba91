"""``s3-encryption-monitor doctor``: is the deployed monitor still seeing? (SPEC §14)

Finds the deployment from its discovery parameter (``infra/discovery.py``), then checks each piece
of the event path and of the sweep with read-only calls, and says PASS, WARN or FAIL per piece,
with the fix. A check that could not be made (a call refused, a service unreachable) is ERROR:
the doctor exits 2 unless something FAILs (1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.drift_monitor.aws.heartbeats import HeartbeatStore
from functions.drift_monitor.domain.discovery import MANIFEST_VERSION, parameter_name
from functions.drift_monitor.domain.heartbeat import MISSED_BEATS

ClientFactory = Callable[[str, str], Any]  # (service, region) -> boto3 client

# Stack statuses that mean the stack is deployed and stable.
_STABLE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
# The queues that hold what failed; what else waits (work, grace) is normal.
_QUEUE_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


class Verdict(StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"  # does not apply to this deployment (no organization, heartbeat off...)
    ERROR = "ERROR"  # could not be checked


@dataclass(frozen=True)
class Check:
    check: str  # which check: stacks, functions, rules, trail...
    verdict: Verdict
    subject: str  # what was checked: a stack, a function, a rule, a region, an account
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict.value}


class NotDeployed(Exception):
    """No discovery parameter for that stack in that account and region."""


def exit_code(checks: list[Check]) -> int:
    verdicts = {check.verdict for check in checks}
    if Verdict.FAIL in verdicts:
        return 1
    return 2 if Verdict.ERROR in verdicts else 0


def load_manifest(clients: ClientFactory, stack: str, region: str) -> dict[str, Any]:
    name = parameter_name(stack)
    try:
        raw = clients("ssm", region).get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ParameterNotFound":
            raise NotDeployed(
                f"no S3 Encryption Drift Monitor stack {stack!r} here: the parameter {name} does "
                f"not exist in {region}. Deployed under another name or in another region? Use "
                "--stack and --region (the home region of the monitor)."
            ) from error
        raise
    manifest: dict[str, Any] = json.loads(raw)
    if manifest.get("version") != MANIFEST_VERSION:
        raise NotDeployed(
            f"{name} holds manifest version {manifest.get('version')!r}; this doctor reads "
            f"version {MANIFEST_VERSION}: use the doctor of the version you deployed"
        )
    return manifest


class Doctor:
    def __init__(
        self,
        clients: ClientFactory,
        manifest: dict[str, Any],
        now: datetime | None = None,
    ) -> None:
        self._clients = clients
        self.manifest = manifest
        self.home = str(manifest["region"])
        self.now = now or datetime.now(UTC)

    @property
    def forwarder_stacks(self) -> dict[str, str]:
        """Each watched region but the home one has a forwarder stack, ``<stack>-<region>``."""
        others = [region for region in self.manifest["regions"] if region != self.home]
        return {region: f"{self.manifest['stack']}-{region}" for region in others}

    @property
    def steps(self) -> list[tuple[str, Callable[[], Iterator[Check]]]]:
        """Each check by name, in the order they run (the progress display names them)."""
        return [
            ("stacks", self.stacks),
            ("functions", self.functions),
            ("rules", self.rules),
            ("trail", self.trails),
            ("subscriptions", self.subscriptions),
            ("queues", self.queues),
            ("sweep", self.sweep),
            ("stack sets", self.stack_sets),
            ("reader roles", self.reader_roles),
            ("heartbeat", self.heartbeat),
        ]

    def run(self, on_step: Callable[[str], None] | None = None) -> list[Check]:
        checks: list[Check] = []
        for name, step in self.steps:
            if on_step is not None:
                on_step(name)
            try:
                checks.extend(step())
            except (ClientError, BotoCoreError) as error:
                checks.append(
                    Check(
                        name,
                        Verdict.ERROR,
                        "-",
                        f"could not check: {_describe(error)}",
                        "the doctor needs read access to what it checks (see the docs: "
                        "'Knowing when it goes blind')",
                    )
                )
        return checks

    # -- the stacks -----------------------------------------------------------------------------

    def stacks(self) -> Iterator[Check]:
        stacks = {self.manifest["stack"]: self.home}
        stacks.update({name: region for region, name in self.forwarder_stacks.items()})
        for name, region in stacks.items():
            try:
                (stack,) = self._clients("cloudformation", region).describe_stacks(StackName=name)[
                    "Stacks"
                ]
            except ClientError as error:
                if "does not exist" not in str(error):
                    raise
                yield Check(
                    "stacks",
                    Verdict.FAIL,
                    f"{name} ({region})",
                    "the stack does not exist: events of that region reach no one"
                    if name != self.manifest["stack"]
                    else "the monitor's stack does not exist",
                    "npx cdk deploy --all (with the same context as before)",
                )
                continue
            status = stack["StackStatus"]
            if status in _STABLE:
                verdict, fix = Verdict.PASS, None
            elif status.endswith("_IN_PROGRESS") or status == "UPDATE_ROLLBACK_COMPLETE":
                verdict = Verdict.WARN
                fix = (
                    "wait for the operation to end; a rolled back update left the previous version"
                )
            else:
                verdict, fix = Verdict.FAIL, "read the stack's events, fix, then cdk deploy --all"
            reason = f" ({stack['StackStatusReason']})" if stack.get("StackStatusReason") else ""
            yield Check("stacks", verdict, f"{name} ({region})", f"{status}{reason}", fix)

    # -- the functions --------------------------------------------------------------------------

    def functions(self) -> Iterator[Check]:
        cloudwatch = self._clients("cloudwatch", self.home)
        for role, name in self.manifest["functions"].items():
            counts = {
                metric: _sum_24h(cloudwatch, metric, name, self.now)
                for metric in ("Invocations", "Errors", "Throttles")
            }
            subject = f"{role} function {name}"
            detail = (
                f"{counts['Invocations']:.0f} invocations, {counts['Errors']:.0f} errors, "
                f"{counts['Throttles']:.0f} throttles in the last 24 hours"
            )
            if counts["Errors"]:
                yield Check(
                    "functions",
                    Verdict.FAIL,
                    subject,
                    detail,
                    f"read its log group /aws/lambda/{name} (level ERROR); events are retried, "
                    "then kept in the failure queue",
                )
            elif counts["Throttles"]:
                yield Check(
                    "functions",
                    Verdict.WARN,
                    subject,
                    detail,
                    "raise the account's Lambda concurrency quota, or the reservation of others",
                )
            else:
                yield Check("functions", Verdict.PASS, subject, detail)

    # -- the rules ------------------------------------------------------------------------------

    def rules(self) -> Iterator[Check]:
        default_bus = self.manifest["defaultBus"]
        for rule in self.manifest["rules"]:
            bus, _, name = str(rule["name"]).rpartition("|")
            yield self._rule(self.home, bus or rule.get("bus") or default_bus, name)
        for region, stack in self.forwarder_stacks.items():
            events = self._clients("events", region)
            found = events.list_rules(NamePrefix=f"{stack}-", EventBusName=default_bus)["Rules"]
            if not found:
                yield Check(
                    "rules",
                    Verdict.FAIL,
                    f"forwarder in {region}",
                    f"no rule of {stack} on the {default_bus} bus: {region}'s events stay there",
                    "npx cdk deploy --all",
                )
            for candidate in found:
                yield self._rule(region, default_bus, candidate["Name"])

    def _rule(self, region: str, bus: str, name: str) -> Check:
        events = self._clients("events", region)
        subject = f"{name} ({region}, bus {bus})"
        try:
            state = events.describe_rule(Name=name, EventBusName=bus)["State"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            return Check("rules", Verdict.FAIL, subject, "the rule does not exist", "cdk deploy")
        targets = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
        if state != "ENABLED":
            return Check(
                "rules",
                Verdict.FAIL,
                subject,
                f"the rule is {state}: what it routes is dropped",
                f"aws events enable-rule --name {name} --event-bus-name {bus} --region {region}",
            )
        if not targets:
            return Check("rules", Verdict.FAIL, subject, "the rule has no target", "cdk deploy")
        return Check("rules", Verdict.PASS, subject, f"ENABLED, {len(targets)} target(s)")

    # -- CloudTrail -----------------------------------------------------------------------------

    def trails(self) -> Iterator[Check]:
        for region in self.manifest["regions"]:
            cloudtrail = self._clients("cloudtrail", region)
            trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
            covering = [
                trail
                for trail in trails
                if trail.get("HomeRegion") == region or trail.get("IsMultiRegionTrail")
            ]
            logging = [trail for trail in covering if self._logs_writes(trail)]
            if logging:
                names = ", ".join(trail["Name"] for trail in logging)
                organization = any(trail.get("IsOrganizationTrail") for trail in logging)
                scope = " (an organization trail)" if organization else ""
                yield Check(
                    "trail",
                    Verdict.PASS,
                    region,
                    f"{names} logs write management events{scope}",
                )
                continue
            why = (
                "no trail covers it"
                if not covering
                else f"{', '.join(t['Name'] for t in covering)} is stopped or logs no write "
                "management events"
            )
            yield Check(
                "trail",
                Verdict.FAIL,
                region,
                f"{why}: S3 sends no event, the monitor hears nothing from {region}",
                "deploy with -c createTrail=true, or start logging (aws cloudtrail start-logging "
                "--name TRAIL) with management events Write or All",
            )

    def _logs_writes(self, trail: dict[str, Any]) -> bool:
        cloudtrail = self._clients("cloudtrail", str(trail.get("HomeRegion") or self.home))
        arn = trail["TrailARN"]
        if not cloudtrail.get_trail_status(Name=arn).get("IsLogging"):
            return False
        selectors = cloudtrail.get_event_selectors(TrailName=arn)
        for selector in selectors.get("EventSelectors") or []:
            if selector.get("IncludeManagementEvents", True) and selector.get(
                "ReadWriteType", "All"
            ) in ("All", "WriteOnly"):
                return True
        for advanced in selectors.get("AdvancedEventSelectors") or []:
            fields = {f["Field"]: f for f in advanced.get("FieldSelectors", [])}
            category = fields.get("eventCategory", {}).get("Equals", [])
            read_only = fields.get("readOnly", {}).get("Equals", [])
            if "Management" in category and "true" not in read_only:
                return True
        return False

    # -- who gets the alerts --------------------------------------------------------------------

    def subscriptions(self) -> Iterator[Check]:
        topic = self.manifest["topicArn"]
        sns = self._clients("sns", self.home)
        found: list[dict[str, Any]] = []
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
            found += page.get("Subscriptions", [])
        pending = [s for s in found if s["SubscriptionArn"] == "PendingConfirmation"]
        for subscription in pending:
            yield Check(
                "subscriptions",
                Verdict.FAIL,
                f"{subscription['Protocol']} {subscription['Endpoint']}",
                "pending confirmation: nothing is delivered there until it is confirmed",
                "open the 'AWS Notification - Subscription Confirmation' email and confirm (or "
                "aws sns subscribe again to resend it)",
            )
        confirmed = len(found) - len(pending)
        if not found:
            yield Check(
                "subscriptions",
                Verdict.FAIL,
                topic,
                "the alert topic has no subscription: alerts reach no one",
                "deploy with -c alertEmails=you@example.com, or subscribe to the topic",
            )
        elif confirmed:
            yield Check("subscriptions", Verdict.PASS, topic, f"{confirmed} confirmed")

    # -- what failed ----------------------------------------------------------------------------

    def queues(self) -> Iterator[Check]:
        sqs = self._clients("sqs", self.home)
        for label, url in self.manifest["queues"].items():
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_QUEUE_ATTRIBUTES)
            waiting = sum(int(attributes["Attributes"].get(name, 0)) for name in _QUEUE_ATTRIBUTES)
            subject = f"{label} ({url.rsplit('/', 1)[-1]})"
            if waiting:
                yield Check(
                    "queues",
                    Verdict.FAIL,
                    subject,
                    f"{waiting} message(s) waiting: events or work the monitor could not process",
                    f"aws sqs receive-message --queue-url {url} --attribute-names All; see "
                    "Troubleshooting, then move or delete them",
                )
            else:
                yield Check("queues", Verdict.PASS, subject, "empty")

    # -- the sweep ------------------------------------------------------------------------------

    def sweep(self) -> Iterator[Check]:
        table, schedule = self.manifest.get("runTable"), self.manifest.get("sweepSchedule")
        if not table or not schedule:
            yield Check("sweep", Verdict.SKIP, "-", "the sweep is off (sweepSchedule=off)")
            return
        period = _period(schedule)
        runs = _runs(self._clients("dynamodb", self.home), table)
        subject = f"schedule {schedule}"
        if not runs:
            yield Check(
                "sweep",
                Verdict.FAIL,
                subject,
                "no sweep has run (or its records expired after 30 days)",
                "check the sweep schedule's rule and the starter function's log group",
            )
            return
        last = max(runs, key=lambda run: run["startedAt"])
        started = _parse(last["startedAt"])
        age = self.now - started
        when = f"last run started {last['startedAt']} ({_ago(age)} ago)"
        if age > 2 * period:
            yield Check(
                "sweep",
                Verdict.FAIL,
                subject,
                f"{when}: no sweep in two scheduled periods",
                "check the sweep schedule's rule, the starter's errors and the undeliverable "
                "events queue",
            )
        elif not last.get("finishedAt") and age > period:
            yield Check(
                "sweep",
                Verdict.FAIL,
                subject,
                f"{when}, never finished: {last.get('pending', '?')} work item(s) pending",
                "look at the sweep work queue, its dead-letter queue and the worker's log group",
            )
        elif last.get("failedItems"):
            yield Check(
                "sweep",
                Verdict.WARN,
                subject,
                f"{when}, incomplete: {last['failedItems']} work item(s) failed",
                "the digest names them; run s3-encryption-monitor scan on those accounts",
            )
        else:
            state = (
                f"finished {last['finishedAt']}, digest "
                + ("sent" if last.get("digestMessageId") else "not needed (nothing to report)")
                if last.get("finishedAt")
                else "running"
            )
            yield Check("sweep", Verdict.PASS, subject, f"{when}, {state}")

    # -- the organization -----------------------------------------------------------------------

    def stack_sets(self) -> Iterator[Check]:
        organization = self.manifest.get("organization")
        if not organization:
            yield Check("stack sets", Verdict.SKIP, "-", "not the organization topology")
            return
        cloudformation = self._clients("cloudformation", self.home)
        expected = self._member_accounts(organization)
        for name in organization["stackSets"]:
            instances: list[dict[str, Any]] = []
            for page in cloudformation.get_paginator("list_stack_instances").paginate(
                StackSetName=name, CallAs=organization["callAs"]
            ):
                instances += page.get("Summaries", [])
            stale = [i for i in instances if i.get("Status") != "CURRENT"]
            for instance in stale:
                reason = instance.get("StatusReason") or instance.get(
                    "StackInstanceStatus", {}
                ).get("DetailedStatus", "")
                yield Check(
                    "stack sets",
                    Verdict.FAIL,
                    f"{name}: {instance['Account']} {instance['Region']}",
                    f"{instance.get('Status')}: {reason}".rstrip(": "),
                    "read the stack set's operations (CloudFormation, StackSets); fix, then "
                    f"aws cloudformation update-stack-instances --stack-set-name {name} ...",
                )
            reached = {instance["Account"] for instance in instances}
            missing = sorted(expected - reached)
            for account in missing:
                yield Check(
                    "stack sets",
                    Verdict.FAIL,
                    f"{name}: {account}",
                    "an active account of the targets has no instance: its events and buckets "
                    "are not watched",
                    "check the stack set's automatic deployment and its targets (memberTargets)",
                )
            if not stale and not missing:
                regions = len({instance["Region"] for instance in instances})
                yield Check(
                    "stack sets",
                    Verdict.PASS,
                    name,
                    f"{len(instances)} instance(s) CURRENT in {len(reached)} account(s), "
                    f"{regions} region(s)",
                )

    def _member_accounts(self, organization: dict[str, Any]) -> set[str]:
        """Active accounts the StackSets target: the organization's (or the listed accounts),
        without its management account, which service-managed StackSets never reach, and without
        the monitor's own account, which they leave out on purpose (its own stack covers it)."""
        orgs = self._clients("organizations", self.home)
        management = orgs.describe_organization()["Organization"]["MasterAccountId"]
        active: set[str] = set()
        for page in orgs.get_paginator("list_accounts").paginate():
            active |= {a["Id"] for a in page["Accounts"] if a.get("Status") == "ACTIVE"}
        if organization.get("accounts"):
            active &= set(organization["accounts"])
        return active - {management, self.manifest["account"]}

    def reader_roles(self) -> Iterator[Check]:
        organization = self.manifest.get("organization")
        worker = self.manifest["functions"].get("sweepWorker")
        if not organization or not worker:
            yield Check("reader roles", Verdict.SKIP, "-", "not the organization topology")
            return
        accounts = sorted(self._member_accounts(organization))
        response = self._clients("lambda", self.home).invoke(
            FunctionName=worker,
            Payload=json.dumps({"probe": "readerRoles", "accounts": accounts}).encode(),
        )
        answer = json.loads(response["Payload"].read() or b"null")
        if (
            response.get("FunctionError")
            or not isinstance(answer, dict)
            or "accounts" not in answer
        ):
            yield Check(
                "reader roles",
                Verdict.ERROR,
                worker,
                f"the probe failed: {answer!r}",
                f"read the worker's log group /aws/lambda/{worker}",
            )
            return
        for account, result in sorted(answer["accounts"].items()):
            if result.get("ok"):
                yield Check("reader roles", Verdict.PASS, account, "assumed, buckets listed")
            else:
                yield Check(
                    "reader roles",
                    Verdict.FAIL,
                    account,
                    f"as the monitor sees it: {result.get('error')}",
                    "check the reader role there (deployed by the MemberReader stack set), its "
                    "trust policy, and SCPs denying sts:AssumeRole or s3:ListAllMyBuckets",
                )

    # -- the heartbeat --------------------------------------------------------------------------

    def heartbeat(self) -> Iterator[Check]:
        minutes = self.manifest.get("heartbeatMinutes")
        if not minutes:
            yield Check(
                "heartbeat",
                Verdict.SKIP,
                "-",
                "off: nothing proves the event path between two doctor runs",
                "deploy with -c heartbeat='rate(15 minutes)'",
            )
            return
        beats, expected = HeartbeatStore(
            self._clients("dynamodb", self.home), self.manifest["stateTable"]
        ).read()
        now_ms = int(self.now.timestamp() * 1000)
        interval = minutes * 60_000
        if not beats and not expected:
            yield Check(
                "heartbeat",
                Verdict.FAIL,
                "-",
                "no beat recorded yet",
                "wait one interval after deploying; then check the heartbeat schedules",
            )
        for path in sorted({*beats, *expected}):
            last = beats.get(path)
            since = last if last is not None else expected[path]
            age = timedelta(milliseconds=now_ms - since)
            heard = f"last beat {_ago(age)} ago" if last is not None else "never beat"
            if now_ms - since > MISSED_BEATS * interval:
                yield Check(
                    "heartbeat",
                    Verdict.FAIL,
                    path.label,
                    f"{heard} (every {minutes} min expected): the event path is silent",
                    f"check the trail, the forwarder and the heartbeat schedule in {path.region}",
                )
            elif now_ms - since > interval and last is not None:
                yield Check("heartbeat", Verdict.WARN, path.label, f"{heard}: one beat late")
            else:
                yield Check("heartbeat", Verdict.PASS, path.label, heard)


def _sum_24h(cloudwatch: Any, metric: str, function: str, now: datetime) -> float:
    datapoints = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName=metric,
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=now - timedelta(hours=24),
        # A little past now: a datapoint stamped as the doctor started still counts.
        EndTime=now + timedelta(minutes=5),
        Period=86_400,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(point["Sum"] for point in datapoints))


def _runs(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every run the table remembers (30 days): its ``RUN`` items."""
    runs = []
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="sk = :run",
        ExpressionAttributeValues={":run": {"S": "RUN"}},
    ):
        for item in page.get("Items", []):
            runs.append({name: next(iter(value.values())) for name, value in item.items()})
    return runs


def _period(schedule: str) -> timedelta:
    """How often the sweep runs; a cron expression counts as daily."""
    rate = _RATE.match(schedule)
    if rate is None:
        return timedelta(days=1)
    amount, unit = int(rate.group(1)), rate.group(2).rstrip("s")
    return timedelta(**{f"{unit}s": amount})


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ago(age: timedelta) -> str:
    seconds = max(int(age.total_seconds()), 0)  # a clock a little ahead is not the future
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        operation = error.operation_name
        return f"{operation}: {error.response['Error'].get('Code')} ({error})"
    return str(error)


def render_table(stack: str, checks: list[Check]) -> str:
    """One line per check; the fix under each that is not a PASS."""
    width = max((len(check.check) for check in checks), default=5)
    lines = [f"S3 Encryption Drift Monitor doctor: {stack}", ""]
    for check in checks:
        lines.append(
            f"{check.verdict.value:<5}  {check.check:<{width}}  {check.subject}: {check.detail}"
        )
        if check.fix and check.verdict is not Verdict.PASS:
            lines.append(f"{'':<5}  {'':<{width}}  fix: {check.fix}")
    counts = {v: sum(1 for c in checks if c.verdict is v) for v in Verdict}
    lines += ["", ", ".join(f"{n} {v.value}" for v, n in counts.items() if n)]
    return "\n".join(lines)


def render_json(stack: str, checks: list[Check]) -> str:
    counts = {v.value: sum(1 for c in checks if c.verdict is v) for v in Verdict}
    return json.dumps(
        {
            "stack": stack,
            "checks": [check.to_dict() for check in checks],
            "summary": counts,
            "exitCode": exit_code(checks),
        },
        indent=2,
    )
