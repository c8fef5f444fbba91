"""Every function of every topology, run from cdk.out as Lambda runs it (SPEC §13): the runtime's
Python in a fresh interpreter isolated from this environment (-I -S), the asset first on the
import path, then the pinned Powertools layer's contents, the template's environment, and Lambda's
own variables; invoked against the emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.asset import RUNTIME_VERSION, runtime_python
from local.cloudtrail import s3_call_detail
from local.emulator import create_organization, moto_server
from local.lambda_runtime import LambdaContainer, lambda_runtime
from local.pipeline import LocalPipeline
from local.template import SynthesizedMonitor
from tests.e2e.conftest import SynthFactory
from tests.e2e.test_bucket_kinds import POLICY as KINDS_POLICY
from tests.e2e.test_organization import ORGANIZATION_ID
from tests.e2e.test_organization import POLICY as ORGANIZATION_POLICY
from tests.e2e.test_organization import SYNTH_CONTEXT as ORGANIZATION_CONTEXT

pytestmark = pytest.mark.e2e

# The same policies and contexts as test_bucket_kinds and test_organization: one synth each
# for the session (tests/e2e/conftest.py), whatever the order the modules run in.
TOPOLOGIES = {
    "account": (KINDS_POLICY, {}),
    "organization": (ORGANIZATION_POLICY, ORGANIZATION_CONTEXT),
}


@pytest.fixture(scope="module", params=list(TOPOLOGIES))
def deployed(request: pytest.FixtureRequest, synth: SynthFactory) -> Iterator[LocalPipeline]:
    policy, context = TOPOLOGIES[request.param]
    monitor = synth(policy, **context)
    with moto_server(organization_id=ORGANIZATION_ID) as emulator:
        if request.param == "organization":
            create_organization(emulator, ["member"])
        yield LocalPipeline(monitor, emulator)


def functions_of(monitor: SynthesizedMonitor) -> dict[str, str]:
    assert monitor.sweep_function_id and monitor.worker_function_id
    return {
        "event function": monitor.function_id,
        "sweep starter": monitor.sweep_function_id,
        "sweep worker": monitor.worker_function_id,
    }


@pytest.mark.parametrize("function", ["event function", "sweep starter", "sweep worker"])
def test_each_function_imports_as_lambda_imports_it(deployed: LocalPipeline, function: str) -> None:
    function_id = functions_of(deployed.monitor)[function]
    asset = deployed.monitor.asset_dir_of(function_id)

    container = deployed.start(function_id)

    assert container.init_error is None, container.init_error
    # The runtime's Python version where this machine has it (else said in the test header)
    if runtime_python() is not None:
        assert tuple(int(n) for n in container.python.split(".")[:2]) == RUNTIME_VERSION
    # The asset's AWS SDK, the layer's Powertools, nothing from this environment
    assert Path(container.files["botocore"]).is_relative_to(asset)
    assert Path(container.files["boto3"]).is_relative_to(asset)
    assert Path(container.files["aws_lambda_powertools"]).is_relative_to(lambda_runtime().layer)
    assert not [f for f in container.files.values() if ".venv" in f or "site-packages" in f]
    # No X-Ray SDK: it reaches end of support in February 2027; Lambda's tracing stays on
    assert "aws_xray_sdk" not in container.modules
    container.close()


def test_the_event_function_is_invoked_as_lambda_invokes_it(deployed: LocalPipeline) -> None:
    bucket = f"runtime-{uuid.uuid4().hex[:8]}"
    deployed.s3_in(deployed.region).create_bucket(bucket)
    (event,) = deployed.delivered_events()

    with deployed.start_function() as function:
        invocation = function.invoke(event)

    assert invocation.ok, invocation.error
    assert invocation.response["bucket"] == bucket
    # read with the asset's botocore, counted at its call site inside the container
    assert invocation.calls[0] == "GetBucketEncryption"
    assert function.metrics()["Evaluations"] == 1


def test_the_sweep_starter_and_worker_run_a_sweep(deployed: LocalPipeline) -> None:
    invocations = deployed.run_sweep()

    assert [i.error for i in invocations if not i.ok] == []
    assert invocations[0].response["run"]
    assert len(invocations) >= 2  # the starter, then at least one work item


@pytest.mark.parametrize("task_root", [True, False], ids=["in Lambda", "outside Lambda"])
def test_what_the_layer_imports_finds_its_service_models_in_the_asset(
    deployed: LocalPipeline, task_root: bool
) -> None:
    # The X-Ray SDK in the Powertools layer builds an X-Ray client at import when
    # LAMBDA_TASK_ROOT is not set, with the asset's botocore (first on the path): the asset must
    # carry the xray model, or importing it fails (UnknownServiceError).
    asset = deployed.monitor.asset_dir_of(deployed.monitor.function_id)
    environment = {**deployed.function_environment(), "AWS_XRAY_SDK_ENABLED": "true"}

    with LambdaContainer(
        asset,
        "aws_xray_sdk.core.xray_recorder",
        environment,
        function_arn=f"arn:aws:lambda:eu-west-1:{deployed.account}:function:xray-probe",
        timeout_seconds=30,
        task_root_set=task_root,
    ) as probe:
        assert probe.init_error is None, probe.init_error
        assert Path(probe.files["aws_xray_sdk"]).is_relative_to(lambda_runtime().layer)

    # and the handlers themselves import outside Lambda too
    for function_id in functions_of(deployed.monitor).values():
        with LambdaContainer(
            asset,
            deployed.monitor.handler_of(function_id),
            deployed.function_environment(None, function_id),
            function_arn=f"arn:aws:lambda:eu-west-1:{deployed.account}:function:probe",
            timeout_seconds=30,
            task_root_set=task_root,
        ) as container:
            assert container.init_error is None, container.init_error


def test_an_exception_is_an_invocation_error_and_the_container_stays_warm(
    deployed: LocalPipeline,
) -> None:
    with deployed.start_function({"STATE_TABLE_NAME": "no-such-table"}) as function:
        detail = s3_call_detail(
            "PutBucketEncryption", "no-such-bucket", account=deployed.account, region="eu-west-1"
        )
        event = {"detail": detail, "account": deployed.account, "region": "eu-west-1"}
        first, second = function.invoke(event), function.invoke(event)

    assert first.error is not None and second.error is not None
    assert first.error.split(":")[0] == "ResourceNotFoundException"
