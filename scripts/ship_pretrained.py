"""Copy an artifact into the package as a shipped encoder, with the commands that made it in its metadata.

Usage (maintainers)::

    python scripts/ship_pretrained.py ARTIFACT NAME --command "sb3-crptpro collect ..." \\
        --command "sb3-crptpro pretrain ..." [--probe-json probe.json]

Writes ``sb3_crptpro/pretrained/NAME.safetensors``: the same tensors (same ``tensor_sha256``), the same config and
stats, plus ``provenance = {"commands": [...], "seed": ..., "probe": {...}}``. ``--probe-json`` holds a flat
``{"label": R^2}`` dict of state-probe results to show in ``sb3-crptpro inspect --list``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sb3_crptpro.common.artifact import PRETRAINED_DIR, load_artifact, save_artifact


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact")
    parser.add_argument("name")
    parser.add_argument("--command", action="append", required=True, help="one command line, in the order run")
    parser.add_argument("--probe-json", default=None)
    args = parser.parse_args(argv)
    art = load_artifact(args.artifact)
    meta = art.metadata
    provenance = {**(meta.get("provenance") or {}), "commands": args.command}
    provenance.pop("command", None)  # the pretrain command alone is among the commands
    if args.probe_json:
        provenance["probe"] = json.loads(Path(args.probe_json).read_text())
    out = save_artifact(PRETRAINED_DIR / f"{args.name}.safetensors", art.encoder, art.projector, art.prototypes,
                        config=meta["config"], stats=meta["stats"], render=meta.get("render"), tasks=meta.get("tasks"),
                        datasets=meta.get("datasets"), frame_stack=meta["frame_stack"],
                        provenance=provenance)  # fmt: skip
    shipped = load_artifact(out).metadata
    assert shipped["tensor_sha256"] == meta["tensor_sha256"], "tensors changed"
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, tensor sha256 {shipped['tensor_sha256'][:16]})")


if __name__ == "__main__":
    main(sys.argv[1:])
