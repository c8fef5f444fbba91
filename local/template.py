"""Reads what ``cdk synth`` produced: the monitor's stack, the regional forwarder stacks and the
member templates its StackSets deploy (rules, functions, assets, environments, roles)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK_NAME = "S3EncryptionDriftMonitor"
MEMBER_ASSEMBLY = "assembly-MemberTemplates"
PSEUDO_PARAMETERS = ("AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::URLSuffix")


class TemplateError(RuntimeError):
    """The synthesized template is not shaped like the monitor's."""


def resolve(value: Any, refs: Mapping[str, Any]) -> Any:
    """A template value with ``Ref``, ``Fn::GetAtt`` and ``Fn::Join`` replaced: ``refs`` maps a
    logical id or parameter (``Ref``) and ``<id>.<attribute>`` (``Fn::GetAtt``) to its value."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list):
        return [resolve(item, refs) for item in value]
    if isinstance(value, Mapping):
        if "Ref" in value:
            return _lookup(refs, str(value["Ref"]), "Ref")
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return _lookup(refs, f"{logical_id}.{attribute}", "Fn::GetAtt")
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(str(resolve(part, refs)) for part in parts)
        if any(str(key).startswith("Fn::") for key in value):
            raise TemplateError(f"cannot resolve {dict(value)!r} locally")
        return {key: resolve(item, refs) for key, item in value.items()}
    raise TemplateError(f"cannot resolve {value!r} locally")


def _lookup(refs: Mapping[str, Any], name: str, how: str) -> Any:
    if name not in refs:
        shown = name if how == "Fn::GetAtt" else f"{name}.Ref"
        raise TemplateError(f"{shown} is not deployed locally")
    return refs[name]


@dataclass(frozen=True)
class Template:
    path: Path
    resources: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Template:
        body = json.loads(path.read_text())
        return cls(path, body["Resources"], body.get("Parameters", {}))

    def logical_ids(self, resource_type: str) -> list[str]:
        return [lid for lid, res in self.resources.items() if res["Type"] == resource_type]

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return properties

    def target_of(self, rule_id: str) -> str:
        """The logical id of the rule's (first) target."""
        return str(self.properties(rule_id)["Targets"][0]["Arn"]["Fn::GetAtt"][0])

    def s3_rules(self) -> list[str]:
        """The rules on S3's CloudTrail events (their pattern names S3's event source)."""
        return [
            logical_id
            for logical_id in self.logical_ids("AWS::Events::Rule")
            if "s3.amazonaws.com"
            in self.properties(logical_id)
            .get("EventPattern", {})
            .get("detail", {})
            .get("eventSource", [])
        ]


@dataclass(frozen=True, kw_only=True)
class SynthesizedMonitor(Template):
    """The monitor's stack, with what the pipeline needs found once: its functions and rules,
    the regional forwarders' templates and the member templates."""

    outdir: Path
    rule_id: str  # the S3 rule on the default bus
    function_id: str
    sweep_function_id: str | None = (
        None  # the starter; None when synthesized with sweepSchedule=off
    )
    worker_function_id: str | None = None
    member_rule_id: str | None = None  # the S3 rule on the central bus (organization topology)
    # The rules sending bucket creations to the grace queue (None: newBucketGraceSeconds=0).
    new_bucket_rule_id: str | None = None
    member_new_bucket_rule_id: str | None = None
    forwarders: dict[str, Template] = field(default_factory=dict)  # by region
    member_reader: Template | None = None
    member_forwarder: Template | None = None
    watchdog_rule_id: str | None = None  # the heartbeat's watchdog (None: heartbeat off)

    @classmethod
    def load(cls, outdir: Path, stack_name: str = STACK_NAME) -> SynthesizedMonitor:
        path = outdir / f"{stack_name}.template.json"
        if not path.exists():
            raise TemplateError(f"{path} not found: run `make synth` first")
        main = Template.load(path)
        rules: dict[tuple[bool, str], list[str]] = {}
        for lid in main.s3_rules():
            target = main.target_of(lid)
            on_default_bus = "EventBusName" not in main.properties(lid)
            kind = main.resources[target]["Type"]
            rules.setdefault((on_default_bus, kind), []).append(lid)
        default_bus_rules = rules.get((True, "AWS::Lambda::Function"), [])
        if len(default_bus_rules) != 1:
            raise TemplateError(
                f"expected one S3 event rule targeting a function on the default bus in {path}, "
                f"found {len(default_bus_rules)}"
            )
        rule_id = default_bus_rules[0]
        member_rules = rules.get((False, "AWS::Lambda::Function"), [])
        new_bucket_rules = rules.get((True, "AWS::SQS::Queue"), [])
        member_new_bucket_rules = rules.get((False, "AWS::SQS::Queue"), [])
        function_id = main.target_of(rule_id)
        schedules = [
            lid
            for lid in main.logical_ids("AWS::Events::Rule")
            if "ScheduleExpression" in main.properties(lid)
        ]
        # The sweep's schedule targets the starter; the heartbeat's watchdog, the event function.
        sweeps = [lid for lid in schedules if main.target_of(lid) != function_id]
        sweep_function_id = main.target_of(sweeps[0]) if sweeps else None
        watchdogs = [lid for lid in schedules if main.target_of(lid) == function_id]
        # The event function takes the grace queue too; the worker is the other one.
        workers = [
            main.properties(lid)["FunctionName"]["Ref"]
            for lid in main.logical_ids("AWS::Lambda::EventSourceMapping")
            if main.properties(lid)["FunctionName"]["Ref"] != function_id
        ]
        forwarders = {}
        for candidate in sorted(outdir.glob(f"{stack_name}-*.template.json")):
            region = candidate.name.removeprefix(f"{stack_name}-").removesuffix(".template.json")
            forwarders[region] = Template.load(candidate)
        reader = forwarder = None
        for candidate in sorted((outdir / MEMBER_ASSEMBLY).glob("*.template.json")):
            template = Template.load(candidate)
            if template.s3_rules():
                forwarder = template
            elif template.logical_ids("AWS::IAM::Role"):
                reader = template
        return cls(
            path=path,
            resources=main.resources,
            outdir=outdir,
            rule_id=rule_id,
            function_id=function_id,
            sweep_function_id=sweep_function_id,
            worker_function_id=workers[0] if workers else None,
            member_rule_id=member_rules[0] if member_rules else None,
            new_bucket_rule_id=new_bucket_rules[0] if new_bucket_rules else None,
            member_new_bucket_rule_id=(
                member_new_bucket_rules[0] if member_new_bucket_rules else None
            ),
            forwarders=forwarders,
            member_reader=reader,
            member_forwarder=forwarder,
            watchdog_rule_id=watchdogs[0] if watchdogs else None,
        )

    @property
    def new_bucket_grace_seconds(self) -> int:
        """The grace queue's delay; 0 when creations are evaluated at once."""
        if self.new_bucket_rule_id is None:
            return 0
        queue = self.properties(self.target_of(self.new_bucket_rule_id))
        return int(queue.get("DelaySeconds", 0))

    @property
    def event_pattern(self) -> dict[str, Any]:
        pattern: dict[str, Any] = self.properties(self.rule_id)["EventPattern"]
        return pattern

    def pattern_of(self, rule_id: str) -> dict[str, Any]:
        pattern: dict[str, Any] = self.properties(rule_id)["EventPattern"]
        return pattern

    @property
    def handler(self) -> str:
        return self.handler_of(self.function_id)

    def handler_of(self, function_id: str) -> str:
        return str(self.properties(function_id)["Handler"])

    def timeout_of(self, function_id: str) -> int:
        return int(self.properties(function_id).get("Timeout", 3))

    def memory_of(self, function_id: str) -> int:
        return int(self.properties(function_id).get("MemorySize", 128))

    def role_of(self, function_id: str) -> str:
        """The logical id of the function's role."""
        return str(self.properties(function_id)["Role"]["Fn::GetAtt"][0])

    @property
    def asset_dir(self) -> Path:
        return self.asset_dir_of(self.function_id)

    def asset_dir_of(self, function_id: str) -> Path:
        """The function's code as ``cdk synth`` staged it in ``cdk.out``."""
        metadata = self.resources[function_id].get("Metadata", {})
        if "aws:asset:path" not in metadata:
            raise TemplateError(
                "the function has no aws:asset:path metadata (synthesize with the CDK CLI)"
            )
        return self.outdir / str(metadata["aws:asset:path"])

    @property
    def environment(self) -> dict[str, Any]:
        return self.environment_of(self.function_id)

    def environment_of(self, function_id: str) -> dict[str, Any]:
        variables: dict[str, Any] = (
            self.properties(function_id).get("Environment", {}).get("Variables", {})
        )
        return variables

    def async_config_of(self, function_id: str) -> dict[str, Any]:
        for resource in self.resources.values():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::EventInvokeConfig" and properties.get(
                "FunctionName"
            ) == {"Ref": function_id}:
                config: dict[str, Any] = properties
                return config
        raise TemplateError("the function has no asynchronous invocation config")

    @property
    def async_config(self) -> dict[str, Any]:
        return self.async_config_of(self.function_id)

    def stack_set_parameters(self, member: Template) -> tuple[dict[str, Any], list[str]]:
        """The parameters and regions the central stack's StackSet gives ``member``'s template
        (the StackSet whose template body is that template)."""
        _, parameters, regions = self.stack_set_of(member)
        return parameters, regions

    def stack_set_of(self, member: Template) -> tuple[str, dict[str, Any], list[str]]:
        """The logical id, parameters and regions of the StackSet deploying ``member``."""
        for logical_id in self.logical_ids("AWS::CloudFormation::StackSet"):
            properties = self.properties(logical_id)
            if json.loads(properties["TemplateBody"])["Resources"] == member.resources:
                parameters = {
                    p["ParameterKey"]: p["ParameterValue"] for p in properties["Parameters"]
                }
                regions = properties["StackInstancesGroup"][0]["Regions"]
                return logical_id, parameters, list(regions)
        raise TemplateError(f"no StackSet deploys {member.path.name}")

    def role_actions(self, function_id: str) -> list[str]:
        """Every IAM action the function's role is allowed, from the policies attached to it."""
        role = self.role_of(function_id)
        actions: set[str] = set()
        for logical_id in self.logical_ids("AWS::IAM::Policy"):
            properties = self.properties(logical_id)
            if {"Ref": role} not in properties["Roles"]:
                continue
            for statement in properties["PolicyDocument"]["Statement"]:
                granted = statement["Action"]
                actions.update([granted] if isinstance(granted, str) else granted)
        return sorted(actions)
