"""Does the pretrained encoder help? CRPTpro (alpha 0.005) vs the ablation without the intrinsic loss (alpha 0) vs a
random-init encoder, on a CPU budget (defaults: about 40-60 minutes on 2 cores).

Reports state-probe R^2 on the pretraining domains and on unseen domains, prototype coverage for both alphas, and a
short downstream AugmentedSAC run (several seeds) with each frozen encoder. Resumable: re-run the same command.

Usage: ``python benchmarks/quality.py [--out outputs/quality] [--updates 1000] [--downstream-steps 2000] ...``
(every size is a flag; ``--help`` lists them). Output: ``<out>/report.md``, ``results.json``, PNGs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from _protocol import ProtocolSizes, run_protocol


def sizes_parser(description: str, defaults: ProtocolSizes, out: str) -> argparse.ArgumentParser:
    """A flag per :class:`ProtocolSizes` field (lists take several values)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=out, help="output folder (default: %(default)s)")
    for f in dataclasses.fields(ProtocolSizes):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, list):
            kind = type(default[0]) if default else str
            parser.add_argument(flag, nargs="+", type=kind, default=default, help=f"(default: {default})")
        elif default is None:
            parser.add_argument(flag, type=int, default=None, help="(default: auto)")
        else:
            parser.add_argument(flag, type=type(default), default=default, help=f"(default: {default})")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = sizes_parser(__doc__.splitlines()[0], ProtocolSizes(), "outputs/quality")
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    start = time.perf_counter()
    run_protocol(ProtocolSizes(**args), out)
    print(f"report: {out}/report.md ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
