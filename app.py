#!/usr/bin/env python3
"""CDK app: `cdk synth` / `cdk deploy` (see README). Configuration comes from cdk.json context."""

from __future__ import annotations

import sys

import aws_cdk as cdk
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import CONTEXT_KEYS, ConfigError, props_from_context
from infra.stack import EncryptionDriftMonitorStack


def build_app(context: dict[str, object] | None = None, outdir: str | None = None) -> cdk.App:
    app = cdk.App(context=context, outdir=outdir)
    props = props_from_context({key: app.node.try_get_context(key) for key in CONTEXT_KEYS})
    EncryptionDriftMonitorStack(
        app,
        "S3EncryptionDriftMonitor",
        props=props,
        description="S3 Encryption Drift Monitor: alerts when S3 default encryption drifts",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main(context: dict[str, object] | None = None) -> int:
    try:
        app = build_app(context)
    except ConfigError as error:
        sys.stderr.write(f"Invalid configuration: {error}\n")
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
