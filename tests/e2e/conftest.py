"""The local pipeline (SPEC §8): `cdk synth` by the real CLI, run on moto server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local.template import SynthesizedMonitor
from tests.conftest import REPO

CDK = REPO / "node_modules" / ".bin" / "cdk"


def offline_environment() -> dict[str, str]:
    """No AWS credentials: with them the CDK CLI asks STS for a default account (network)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **environment,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }


def cdk_synth(
    outdir: Path, policy: dict[str, Any], context: dict[str, str] | None = None
) -> SynthesizedMonitor:
    if not CDK.exists():
        pytest.fail("the CDK CLI is not installed: run `make setup` (or `make test`)")
    result = subprocess.run(
        [
            str(CDK),
            "synth",
            "--no-notices",
            "-q",
            "--output",
            str(outdir),
            "-c",
            f"policy={json.dumps(policy)}",
            *[arg for key, value in (context or {}).items() for arg in ("-c", f"{key}={value}")],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=offline_environment(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "end-of-life" not in result.stderr, result.stderr
    return SynthesizedMonitor.load(outdir)


SynthFactory = Callable[..., SynthesizedMonitor]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthFactory:
    # One synth per distinct policy and context for the whole session (~15 s each): a
    # synthesized monitor is only read, and each deployment of it has its own prefix.
    synthesized: dict[str, SynthesizedMonitor] = {}

    def build(policy: dict[str, Any], **context: str) -> SynthesizedMonitor:
        # Bucket creations are evaluated at once unless a test asks for a grace period: most
        # tests are about what follows a creation, not about waiting for it.
        context = {"newBucketGraceSeconds": "0", **context}
        key = json.dumps([policy, context], sort_keys=True)
        if key not in synthesized:
            synthesized[key] = cdk_synth(tmp_path_factory.mktemp("cdk.out"), policy, context)
        return synthesized[key]

    return build
