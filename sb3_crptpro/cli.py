"""The ``sb3-crptpro`` command line (one entry point, one subcommand per pipeline stage)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sb3_crptpro._version import __version__


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one clear line (plus usage), never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_demo(args: argparse.Namespace) -> int:
    from sb3_crptpro.render_demo import render_frame_grid

    out = Path(args.out) / "frames.png"
    start = time.perf_counter()
    timings = render_frame_grid(out, args.tasks, n_frames=args.frames, image_size=args.image_size, render=args.render)
    print(f"{'task':<20} {'frames/s':>9}")
    for task, fps in timings.items():
        print(f"{task:<20} {fps:9.1f}")
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from sb3_crptpro.render_demo import DEFAULT_DEMO_TASKS

    p = sub.add_parser("demo", help="render a few frames of several domains into a PNG grid and print timings")
    p.add_argument("--out", default="outputs/demo", help="report folder (default: %(default)s)")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_DEMO_TASKS), help="DMC tasks (default: %(default)s)")
    p.add_argument("--frames", type=int, default=6, help="frames per task (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=84, help="frame side in pixels (default: %(default)s)")
    p.add_argument("--render", choices=["paper", "fast"], default="fast", help="render preset (default: %(default)s)")
    p.set_defaults(func=_cmd_demo)


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_demo]


def build_parser() -> argparse.ArgumentParser:
    """The full ``sb3-crptpro`` parser."""
    parser = _Parser(prog="sb3-crptpro", description="CRPTpro pretrained encoders for Stable-Baselines3.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sb3-crptpro`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"sb3-crptpro {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
