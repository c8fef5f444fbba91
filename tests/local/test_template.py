"""The local pipeline refuses what it cannot run faithfully, saying why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.demo import main as demo_main
from local.emulator import Emulator
from local.pipeline import LocalPipeline
from local.template import SynthesizedMonitor, TemplateError

# The part of a rule's pattern that tells an S3 rule: S3's CloudTrail event source.
S3_PATTERN = {"detail": {"eventSource": ["s3.amazonaws.com"]}}


def _write(outdir: Path, resources: dict[str, object]) -> None:
    (outdir / "S3EncryptionDriftMonitor.template.json").write_text(
        json.dumps({"Resources": resources})
    )


def test_a_missing_template_says_to_synthesize(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="run `make synth` first"):
        SynthesizedMonitor.load(tmp_path)


def test_a_template_without_the_s3_rule_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}})

    with pytest.raises(TemplateError, match="expected one S3 event rule"):
        SynthesizedMonitor.load(tmp_path)


def test_a_function_without_asset_metadata_is_refused(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": S3_PATTERN,
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}],
                },
            },
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "h.handler"}},
        },
    )

    monitor = SynthesizedMonitor.load(tmp_path)

    assert monitor.function_id == "Fn"
    with pytest.raises(TemplateError, match="aws:asset:path"):
        _ = monitor.asset_dir
    with pytest.raises(TemplateError, match="asynchronous invocation config"):
        _ = monitor.async_config


def test_the_demo_explains_a_missing_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo_main([str(tmp_path)]) == 2
    assert "Cannot run the demo:" in capsys.readouterr().err


def test_a_template_value_the_pipeline_cannot_resolve_is_named(
    tmp_path: Path, emulator: Emulator
) -> None:
    _write(
        tmp_path,
        {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": S3_PATTERN,
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}],
                },
            },
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": "h.handler",
                    "Environment": {
                        "Variables": {
                            "ALERT_TOPIC_ARN": {"Ref": "Topic"},
                            "SUBSTITUTED": {"Fn::Sub": "${AWS::Region}"},
                            "MISSING": {"Ref": "NotDeployed"},
                        }
                    },
                },
            },
        },
    )
    pipeline = LocalPipeline(SynthesizedMonitor.load(tmp_path), emulator)

    assert pipeline.resolve({"Ref": "Topic"}).endswith("-Topic")
    with pytest.raises(TemplateError, match=r"cannot resolve .*Fn::Sub"):
        pipeline.function_environment()
    with pytest.raises(TemplateError, match=r"NotDeployed\.Ref is not deployed locally"):
        pipeline.resolve({"Ref": "NotDeployed"})
