#!/usr/bin/env python3
"""CDK app: `cdk synth` / `cdk deploy` (see README). Configuration comes from cdk.json context.

Stacks: the monitor in its home region; with `regions`, a forwarder stack per other region; with
`organizationId`, the member templates (in the `MemberTemplates` stage, deployed by the monitor
stack's StackSets, never by `cdk deploy --all`); with `stackSetCallAs=DELEGATED_ADMIN`, the same
for the management account, which StackSets never reach (in the `ManagementAccount` stage,
deployed there with `cdk deploy 'ManagementAccount/*'`).
"""

from __future__ import annotations

import sys

import aws_cdk as cdk
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import CONTEXT_KEYS, ConfigError, props_from_context
from infra.member import MemberForwarderStack, MemberReaderStack, synthesize_member_templates
from infra.stack import EncryptionDriftMonitorStack, RegionalForwarderStack

STACK_NAME = "S3EncryptionDriftMonitor"


def build_app(context: dict[str, object] | None = None, outdir: str | None = None) -> cdk.App:
    app = cdk.App(context=context, outdir=outdir)
    props = props_from_context({key: app.node.try_get_context(key) for key in CONTEXT_KEYS})
    member_templates = None
    if props.organization is not None:
        stage = cdk.Stage(app, "MemberTemplates")
        member_templates = synthesize_member_templates(
            stage,
            props.organization.member_role_name,
            props.watched_events,
            policy=props.policy,
            remediates=props.remediates,
            heartbeat=props.heartbeat,
        )
    # Environment-agnostic unless `regions` pins the home region (forwarders must know it).
    home = cdk.Environment(region=props.home_region) if props.home_region else None
    EncryptionDriftMonitorStack(
        app,
        STACK_NAME,
        props=props,
        member_templates=member_templates,
        env=home,
        description="S3 Encryption Drift Monitor: alerts when S3 default encryption drifts",
    )
    for region in props.regions[1:]:
        RegionalForwarderStack(
            app,
            f"{STACK_NAME}-{region}",
            home_region=props.regions[0],
            event_names=props.watched_events,
            heartbeat=props.heartbeat,
            env=cdk.Environment(region=region),
            description=f"S3 Encryption Drift Monitor: forwards {region}'s S3 events home",
        )
    if props.organization is not None and props.organization.delegated_admin:
        management = cdk.Stage(app, "ManagementAccount")
        MemberReaderStack(
            management,
            "Reader",
            role_name=props.organization.member_role_name,
            policy=props.policy,
            remediates=props.remediates,
            env=home,
        )
        # Environment-agnostic without `regions`: the region cdk deploy is given.
        forwarded: tuple[str | None, ...] = props.regions or (None,)
        for where in forwarded:
            MemberForwarderStack(
                management,
                f"Forwarder-{where}" if where else "Forwarder",
                event_names=props.watched_events,
                heartbeat=props.heartbeat,
                env=cdk.Environment(region=where) if where else None,
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
