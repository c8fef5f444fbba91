"""Reads what ``cdk synth`` produced: the rule's pattern, the function's asset and environment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACK_NAME = "S3EncryptionDriftMonitor"


class TemplateError(RuntimeError):
    """The synthesized template is not shaped like the monitor's."""


@dataclass(frozen=True)
class SynthesizedMonitor:
    outdir: Path
    resources: dict[str, Any]
    rule_id: str
    function_id: str
    sweep_function_id: str | None = None  # None when synthesized with sweepSchedule=off

    @classmethod
    def load(cls, outdir: Path, stack_name: str = STACK_NAME) -> SynthesizedMonitor:
        path = outdir / f"{stack_name}.template.json"
        if not path.exists():
            raise TemplateError(f"{path} not found: run `make synth` first")
        resources: dict[str, Any] = json.loads(path.read_text())["Resources"]
        rules = [
            logical_id
            for logical_id, resource in resources.items()
            if resource["Type"] == "AWS::Events::Rule"
            and "aws.s3" in resource["Properties"].get("EventPattern", {}).get("source", [])
        ]
        if len(rules) != 1:
            raise TemplateError(f"expected one S3 event rule in {path}, found {len(rules)}")
        targets = resources[rules[0]]["Properties"]["Targets"]
        function_id = targets[0]["Arn"]["Fn::GetAtt"][0]
        schedules = [
            resource
            for resource in resources.values()
            if resource["Type"] == "AWS::Events::Rule"
            and "ScheduleExpression" in resource["Properties"]
        ]
        sweep_function_id = (
            schedules[0]["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0] if schedules else None
        )
        return cls(
            outdir=outdir,
            resources=resources,
            rule_id=rules[0],
            function_id=function_id,
            sweep_function_id=sweep_function_id,
        )

    def _properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[logical_id]["Properties"]
        return properties

    @property
    def event_pattern(self) -> dict[str, Any]:
        pattern: dict[str, Any] = self._properties(self.rule_id)["EventPattern"]
        return pattern

    @property
    def handler(self) -> str:
        return self.handler_of(self.function_id)

    def handler_of(self, function_id: str) -> str:
        return str(self._properties(function_id)["Handler"])

    def timeout_of(self, function_id: str) -> int:
        return int(self._properties(function_id).get("Timeout", 3))

    @property
    def asset_dir(self) -> Path:
        metadata = self.resources[self.function_id].get("Metadata", {})
        if "aws:asset:path" not in metadata:
            raise TemplateError(
                "the function has no aws:asset:path metadata (synthesize with the CDK CLI)"
            )
        return self.outdir / str(metadata["aws:asset:path"])

    @property
    def environment(self) -> dict[str, Any]:
        return self.environment_of(self.function_id)

    def environment_of(self, function_id: str) -> dict[str, Any]:
        variables: dict[str, Any] = self._properties(function_id)["Environment"]["Variables"]
        return variables

    @property
    def async_config(self) -> dict[str, Any]:
        for resource in self.resources.values():
            if resource["Type"] == "AWS::Lambda::EventInvokeConfig":
                properties: dict[str, Any] = resource["Properties"]
                return properties
        raise TemplateError("the function has no asynchronous invocation config")

    def logical_ids(self, resource_type: str) -> list[str]:
        return [lid for lid, res in self.resources.items() if res["Type"] == resource_type]

    def role_actions(self, function_id: str) -> list[str]:
        """Every IAM action the function's role is allowed, from the policies attached to it."""
        role = self._properties(function_id)["Role"]["Fn::GetAtt"][0]
        actions: set[str] = set()
        for logical_id in self.logical_ids("AWS::IAM::Policy"):
            properties = self._properties(logical_id)
            if {"Ref": role} not in properties["Roles"]:
                continue
            for statement in properties["PolicyDocument"]["Statement"]:
                granted = statement["Action"]
                actions.update([granted] if isinstance(granted, str) else granted)
        return sorted(actions)
