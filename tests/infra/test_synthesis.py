"""Synth-time gates: config errors name the key, cdk-nag and cfn-lint pass, assets are clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_sqs as sqs

import app as cdk_app
from app import build_app
from infra.config import CONTEXT_KEYS, ConfigError, MonitorProps, props_from_context
from infra.functions import FUNCTION_CODE, RUNTIME
from tests.conftest import REPO
from tests.infra.conftest import CDK_JSON_CONTEXT, CHAT


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"policy": {"allowedAlgorithms": []}},
            "context 'policy' is invalid: policy field 'allowedAlgorithms'",
        ),
        (
            {"policy": {"allowedAlgorithms": ["aws:kms"], "requireBucketkey": True}},
            "'requireBucketkey': unknown field",
        ),
        ({"policy": {"allowedKmsKeys": ["my-key"]}}, "'allowedKmsKeys[0]'"),
        (
            {"policy": {"exceptions": [{"buckets": ["legacy-*"], "allow": "all", "reason": "x",
                                        "owner": "team"}]}},
            "policy field 'exceptions[0].expires': is required",
        ),
        (
            {"policy": {"exceptions": [{"buckets": [f"team-{n}-*"], "allow": "all",
                                        "reason": "r" * 100, "owner": "o",
                                        "expires": "2027-01-31"} for n in range(20)]}},
            "more than 3000: the functions receive it in ENCRYPTION_POLICY",
        ),
        ({"policy": '{"allowedAlgorithms": ["AES256"]'}, "context 'policy' is not valid JSON"),
        ({"policy": ["aws:kms"]}, "must be a JSON object"),
        (
            {"alertEmails": "secops@example.com,not-an-address"},
            "'not-an-address' is not an email address",
        ),
        ({"alertEmails": 42}, "context 'alertEmails' must be a list"),
        ({"createTrail": "yes"}, "context 'createTrail' must be true or false"),
        ({"powertoolsLayerArn": "AWSLambdaPowertoolsPythonV3:40"}, "context 'powertoolsLayerArn'"),
        ({"sweepSchedule": "daily"}, "context 'sweepSchedule' must be 'off', 'rate("),
        ({"sweepSchedule": 24}, "context 'sweepSchedule' must be"),
        ({"sweepSchedule": "rate(1 days)"}, "'rate(1 days)' is not a valid rate"),
        ({"sweepSchedule": "rate(2 day)"}, "'rate(2 day)' is not a valid rate"),
        ({"sweepSchedule": "rate(0 hours)"}, "'rate(0 hours)' is not a valid rate"),
        ({"sweepSchedule": "rate(30 minutes)"}, "is more often than hourly"),
        ({"sweepSchedule": "cron(0 6 * *)"}, "context 'sweepSchedule' must be"),
        ({"sweepDigestWhenCompliant": "sometimes"}, "'sweepDigestWhenCompliant' must be true"),
        ({"sweepReportRetentionDays": 0}, "'sweepReportRetentionDays' must be a whole number"),
        ({"sweepReportRetentionDays": "forever"}, "'sweepReportRetentionDays' must be"),
        ({"newBucketGraceSeconds": 901}, "'newBucketGraceSeconds' must be a whole number of "
         "seconds from 0 to 900"),
        ({"newBucketGraceSeconds": "soon"}, "'newBucketGraceSeconds' must be"),
        ({"securityHub": "on"}, "context 'securityHub' must be true or false"),
        ({"eventBusOutput": "my-bus"}, "context 'eventBusOutput' must be false, true"),
        ({"remediation": "auto"}, "context 'remediation' must be one of off, dry-run, apply"),
        ({"remediationLimitPerHour": 0}, "'remediationLimitPerHour' must be a whole number"),
        ({"regions": "eu-west-1,mars-north-1"}, "'mars-north-1' is not an AWS region name"),
        ({"regions": " , "}, "context 'regions' must name at least one region"),
        ({"regions": "eu-west-1,eu-west-1"}, "context 'regions' lists eu-west-1 more than once"),
        ({"regions": "eu-west-1,cn-north-1"}, "context 'regions' mixes partitions"),
        ({"regions": '["eu-west-1"'}, "context 'regions' is not valid JSON"),
        ({"regions": 42}, "context 'regions' must be a list of strings"),
        ({"regions": "eu-west-1", "homeRegion": "us-east-1"},
         "context 'homeRegion' 'us-east-1' is not one of context 'regions'"),
        ({"homeRegion": "us-east-1"}, "context 'homeRegion' needs context 'regions'"),
        ({"organizationId": "o-1", "memberTargets": "r-ab12", "regions": "eu-west-1"},
         "context 'organizationId': 'o-1' is not an organization id"),
        ({"organizationId": "o-a1b2c3d4e5", "memberTargets": "r-ab12"},
         "context 'regions' is required with 'organizationId'"),
        ({"organizationId": "o-a1b2c3d4e5", "regions": "eu-west-1"},
         "context 'memberTargets' must list the organization's root id"),
        ({"organizationId": "o-a1b2c3d4e5", "memberTargets": [], "regions": "eu-west-1"},
         "context 'memberTargets' must list"),
        ({"organizationId": "o-a1b2c3d4e5", "memberTargets": "ou-1", "regions": "eu-west-1"},
         "context 'memberTargets': 'ou-1' is not a root id"),
        ({"organizationId": "o-a1b2c3d4e5", "memberTargets": "r-ab12", "regions": "eu-west-1",
          "memberRoleName": "reader role"}, "context 'memberRoleName': 'reader role'"),
        ({"organizationId": "o-a1b2c3d4e5", "memberTargets": "r-ab12", "regions": "eu-west-1",
          "accounts": "1234"}, "context 'accounts': '1234' is not a 12-digit account id"),
        ({"organizationId": "o-a1b2c3d4e5", "memberTargets": "r-ab12", "regions": "eu-west-1",
          "stackSetCallAs": "ADMIN"}, "context 'stackSetCallAs' must be SELF"),
        ({"memberTargets": "r-ab12"}, "context 'memberTargets' needs context 'organizationId'"),
        ({"heartbeat": "rate(5 minutes)"}, "context 'heartbeat' must be 'off' or 'rate(N "
         "minutes|hours)' from 15 minutes to 24 hours, got 'rate(5 minutes)'"),
        ({"heartbeat": "rate(2 days)"}, "context 'heartbeat' must be 'off' or 'rate("),
        ({"heartbeat": "rate(25 hours)"}, "context 'heartbeat' must be 'off' or 'rate("),
        ({"heartbeat": "hourly"}, "context 'heartbeat' must be 'off' or 'rate("),
        ({"heartbeat": "rate(1 hours)"}, "context 'heartbeat': 'rate(1 hours)' is not a valid"),
        ({"heartbeat": True}, "context 'heartbeat' must be"),
        ({"chat": ["T07EZ1ABC"]}, "context 'chat' must be an object with slack and/or teams"),
        ({"chat": {"discord": []}}, "context 'chat.discord': unknown key"),
        ({"chat": {"slack": []}}, "context 'chat' names no channel"),
        ({"chat": {"slack": [{"workspaceId": "t07ez1abc", "channelId": "C07EZ1ABC23"}]}},
         "context 'chat.slack[0].workspaceId': 't07ez1abc' is not a valid id"),
        ({"chat": {"slack": [{"workspaceId": "T07EZ1ABC", "channelId": "#alerts"}]}},
         "context 'chat.slack[0].channelId': '#alerts' is not a valid id"),
        ({"chat": {"teams": [{**CHAT["teams"][0], "tenantId": "contoso"}]}},
         "context 'chat.teams[0].tenantId': 'contoso' is not a valid id"),
        ({"chat": {"teams": [{**CHAT["teams"][0], "channelId": "General"}]}},
         "context 'chat.teams[0].channelId': 'General' is not a valid id"),
        ({"chat": {"teams": [{"teamId": CHAT["teams"][0]["teamId"]}]}},
         "context 'chat.teams[0].channelId': None is not a valid id"),
        ({"chat": '{"slack": ['}, "context 'chat' is not valid JSON"),
    ],
)  # fmt: skip
def test_invalid_context_is_refused_at_synth_naming_the_key(
    context: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        build_app(context={**CDK_JSON_CONTEXT, **context})

    assert message in str(refused.value)


def test_absent_context_keys_take_the_documented_defaults() -> None:
    props = props_from_context({key: None for key in CONTEXT_KEYS})

    assert props == MonitorProps()
    assert (props.sweep_schedule, props.digest_when_compliant) == ("rate(1 day)", False)
    assert (props.alert_emails, props.create_trail) == ((), False)


def test_the_app_reports_invalid_configuration_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cdk_app.main(context={"policy": {"exemptTag": ""}}) == 1
    assert "Invalid configuration: context 'policy' is invalid: policy field 'exemptTag'" in (
        capsys.readouterr().err
    )


def test_a_policy_given_as_a_json_string_on_the_command_line_is_accepted() -> None:
    app = build_app(context={**CDK_JSON_CONTEXT, "policy": '{"requireSseCBlocked": true}'})

    assert app.node.find_child("S3EncryptionDriftMonitor")


TOPOLOGIES = {
    "account": {},
    "organization": {
        "organizationId": "o-a1b2c3d4e5",
        "memberTargets": "r-ab12",
        "regions": "eu-west-1,us-east-1,us-west-2",
    },
}


def every_template(outdir: Path) -> list[Path]:
    return sorted([*outdir.glob("*.template.json"), *outdir.glob("assembly-*/*.template.json")])


@pytest.fixture(scope="module", params=list(TOPOLOGIES))
def synthesized(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    outdir = tmp_path_factory.mktemp(f"cdk.out-{request.param}")
    # A stray bytecode file must not reach the asset (nor change its hash).
    pycache = FUNCTION_CODE / "drift_monitor" / "__pycache__"
    pycache.mkdir(exist_ok=True)
    stray = pycache / "stray.cpython-311.pyc"
    stray.write_bytes(b"\0")
    try:
        build_app(
            context={
                **CDK_JSON_CONTEXT,
                **TOPOLOGIES[request.param],
                "createTrail": True,
                "alertEmails": ["secops@example.com"],
                "heartbeat": "rate(15 minutes)",
                # §15: key health (KMS rules, key index, key queue) and both kinds of chat channel
                "policy": {"keyChecks": True},
                "chat": CHAT,
                # What the CDK CLI sets: records where each asset was staged.
                "aws:cdk:enable-asset-metadata": True,
            },
            outdir=str(outdir),
        ).synth()
    finally:
        stray.unlink()
    return outdir


def test_cdk_nag_passes_with_every_acknowledgement_reasoned(synthesized: Path) -> None:
    report = json.loads((synthesized / "validation-report.json").read_text())

    (aws_solutions,) = report["pluginReports"]
    assert aws_solutions["pluginName"] == "AwsSolutions"
    assert aws_solutions["conclusion"] == "success"
    assert aws_solutions["violations"] == []
    for acknowledged in aws_solutions["suppressedViolations"]:
        assert len(acknowledged["reason"]) > 40, acknowledged["ruleName"]


def test_cdk_nag_fails_synthesis_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    app = build_app(context=CDK_JSON_CONTEXT, outdir=str(tmp_path))
    stack = app.node.find_child("S3EncryptionDriftMonitor")
    sqs.Queue(
        stack, "UnencryptedQueueWithoutDeadLetters", encryption=sqs.QueueEncryption.UNENCRYPTED
    )  # type: ignore[arg-type]

    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()


def test_cfn_lint_reports_no_error_in_any_template(synthesized: Path) -> None:
    templates = every_template(synthesized)
    assert len(templates) == (1 if "organization" not in synthesized.name else 5)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            *map(str, templates),
            "--non-zero-exit-code",
            "error",
            "--ignore-checks",
            "W3005",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "", result.stdout


def test_the_asset_is_the_function_code_and_the_locked_sdk_with_the_runtimes_bytecode(
    synthesized: Path,
) -> None:
    template = json.loads((synthesized / "S3EncryptionDriftMonitor.template.json").read_text())
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    (asset_path,) = {function["Metadata"]["aws:asset:path"] for function in functions}
    asset = synthesized / asset_path

    shipped = {str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file()}
    source = {
        str(p.relative_to(FUNCTION_CODE))
        for p in FUNCTION_CODE.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    compiled = {path for path in shipped if "__pycache__" in path}
    ours = {path for path in shipped - compiled if path.startswith("drift_monitor/")}
    assert ours == source
    # the rest is the AWS SDK of requirements.lock (tests/infra/test_asset.py)
    assert {path.split("/")[0] for path in shipped - ours} >= {"boto3", "botocore", "urllib3"}
    # and bytecode of the runtime's Python only, one per module: none left by the tests' Python
    tag = RUNTIME.name.replace("python", "cpython-").replace(".", "")
    assert {path.rsplit(".", 2)[-2] for path in compiled} == {tag}
    assert {
        str(Path(path).parent / "__pycache__" / f"{Path(path).stem}.{tag}.pyc") for path in source
    } <= compiled


CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"


def test_checkov_fails_no_check_and_every_skip_says_why(synthesized: Path) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is not installed: run `make setup`")
    result = subprocess.run(
        [str(CHECKOV), "--skip-download", "--framework", "cloudformation", "--output", "json",
         "--directory", str(synthesized)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip

    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = [r for r in reports if r.get("check_type") == "cloudformation"]
    scanned = {check["file_path"] for check in report["results"]["passed_checks"]}
    assert len(scanned) == len(every_template(synthesized))
    assert report["results"]["failed_checks"] == [], result.stdout[:4000]
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the Lambda functions' VPC and DLQ checks are expected to be skipped"
    for check in skipped:
        assert len(check["check_result"]["suppress_comment"]) > 30, check["check_id"]
    assert result.returncode == 0, result.stderr
