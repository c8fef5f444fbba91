"""``make scan``: the scanner against the account in your environment, or a demo account.

With AWS credentials configured (environment, profile, SSO...), this is exactly
``s3-encryption-monitor scan ARGS``. Without any, it starts the local emulator, creates a small
demo account on it (``local/demo_account.py``) and scans that with ``local/demo-policy.json``;
ARGS still apply and come last, so ``ARGS="--policy my.json"`` wins over the demo policy.

Usage: python -m local.scan [ARGS...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3

from .demo_account import DEMO_POLICY, populate
from .emulator import moto_server

SCANNER = Path(sys.executable).with_name("s3-encryption-monitor")


def main(argv: list[str]) -> int:
    if boto3.Session().get_credentials() is not None:
        os.execv(SCANNER, [str(SCANNER), "scan", *argv])
    print(
        "No AWS credentials are configured: scanning a demo account on the local emulator "
        "(moto server) instead.",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory() as scratch, moto_server(Path(scratch) / "moto.log") as emu:
        populate(emu)
        command = [
            str(SCANNER),
            "scan",
            "--endpoint-url",
            emu.endpoint,
            "--region",
            emu.region,
            "--policy",
            str(DEMO_POLICY),
            *argv,
        ]
        environment = {**os.environ, **emu.environment()}
        return subprocess.run(command, env=environment, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
