#!/usr/bin/env python3
"""Runs drt (the `drt-core` package, "reverse ETL as code") against a Graph API base URL.

It is the second comparison for `bench/e2e` (see docs/benchmarks.md). drt's Meta Conversions
destination has no setting for the Graph API's address: it posts to the module constant
`drt.destinations.meta_conversions._BASE_URL` ("https://graph.facebook.com"), and neither its
sync YAML, its profiles nor an environment variable change it. This wrapper sets that constant
to the stand-in's URL (`--graph`) in-process, then runs drt's own command line with the
remaining arguments, unchanged: `drt_sync.py --graph http://127.0.0.1:4599 run --select x`.
Everything else (reading the source, building, hashing and sending the events, the watermark)
is drt's own code.

Install (not committed; `bench/e2e --compare` does it when the venv is missing):
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -r bench/requirements.txt
"""

import sys

import drt.destinations.meta_conversions as meta
from drt.cli.main import app


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--graph":
        sys.exit("usage: drt_sync.py --graph URL <drt arguments>")
    meta._BASE_URL = args[1].rstrip("/")
    sys.argv = ["drt", *args[2:]]
    return app()


if __name__ == "__main__":
    sys.exit(main())
