"""Where ``s3-encryption-monitor doctor`` finds a deployment: the one SSM parameter each monitor
stack writes (``infra/discovery.py``), by stack name."""

from __future__ import annotations

PARAMETER_PREFIX = "/s3-encryption-drift-monitor/"
MANIFEST_VERSION = 1


def parameter_name(stack_name: str) -> str:
    return f"{PARAMETER_PREFIX}{stack_name}"
