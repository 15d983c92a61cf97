"""Human-readable summaries of artifacts and datasets (``sb3-crptpro inspect``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["describe", "describe_artifact", "describe_datasets", "describe_pretrained", "verify_datasets"]


def _lines(pairs: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in pairs)


def describe_artifact(path: str | Path) -> str:
    """Metadata of a pretrained artifact: format, observation layout, pretraining data, config and final stats.

    Reading verifies the tensor checksum, so a corrupted file is reported as an error, not described.
    """
    from sb3_crptpro.common.artifact import load_artifact

    meta = load_artifact(path).metadata
    stats, config = meta.get("stats") or {}, meta.get("config") or {}
    final = stats.get("final") or {}
    pairs = [
        ("format", f"{meta['format']} v{meta['format_version']} (package {meta.get('package_version')})"),
        ("observation", f"{meta['obs_shape']} uint8 ({meta['frame_stack']} frames, {meta['image_size']} px)"),
        ("render preset", meta.get("render")),
        ("pretraining tasks", ", ".join(meta.get("tasks") or []) or "-"),
        ("encoder", f"{meta['n_layers']} conv layers x {meta['n_filters']} filters, repr_dim {meta['repr_dim']}"),
        ("prototypes", f"{meta['num_protos']} x {meta['proj_dim']}"),
        ("updates", stats.get("updates", "-")),
        ("final loss", final.get("loss", "-")),
        ("prototypes used", _last_batch_usage(final)),
        *_collapse_lines(stats.get("diagnostics") or {}, meta["num_protos"]),
        ("tensor sha256", meta["tensor_sha256"]),
    ]
    keys = ("preset", "updates", "batch_size", "lr", "alpha", "inverse_dynamics", "temperature",
            "sinkhorn_temperature", "num_protos", "queue_length", "freeze_prototypes", "centering", "sampling",
            "augment", "seed")  # fmt: skip
    pairs += [(f"config.{k}", config[k]) for k in keys if k in config]
    pairs += [(f"dataset {t}", sha[:16]) for t, sha in (meta.get("datasets") or {}).items()]
    provenance = meta.get("provenance") or {}
    pairs += [(f"made by ({i + 1})", c) for i, c in enumerate(provenance.get("commands") or [])]
    if provenance.get("command"):
        pairs.append(("made by", provenance["command"]))
    if provenance.get("platform"):
        pairs.append(("made on", provenance["platform"]))
    sessions = provenance.get("sessions") or []
    pairs += [(f"session {i + 1} of {len(sessions)}", c) for i, c in enumerate(sessions)]
    pairs += [(f"probe R^2 {k}", f"{v:.3f}") for k, v in (provenance.get("probe") or {}).items()]
    return f"{path}: CRPTpro artifact\n{_lines(pairs)}"


def describe_pretrained() -> str:
    """One block per encoder shipped with the package (``sb3-crptpro inspect --list``): name, domains, frame
    settings, budget, loss, file size, diagnostics, probe results and the commands that reproduce it."""
    from sb3_crptpro.common.pretrained import PRETRAINED_DIR, list_pretrained

    shipped = list_pretrained()
    if not shipped:
        return f"no encoders shipped in {PRETRAINED_DIR}"
    blocks = []
    for name, info in shipped.items():
        d = info["diagnostics"]
        pairs = [
            ("domains", ", ".join(info["tasks"])),
            ("frames", f"{info['image_size']} px, {info['frame_stack']} stacked, render preset {info['render']}"),
            ("budget", f"{info['updates']} updates at batch {info['batch_size']}, seed {info['seed']}"),
            ("loss", info["loss"]),
            ("file", f"{info['bytes'] / 2**20:.1f} MiB"),
        ]
        if d:
            pairs.append(("diagnostics", f"effective rank {d['eff_rank']:.1f} (worst domain {d['eff_rank_min']:.1f}), "
                                         f"{d['n_used']:.0f} prototypes used"))  # fmt: skip
        pairs += [(f"probe R^2 {k}", f"{v:.3f}") for k, v in info["probe"].items()]
        if info["default"]:
            pairs.append(("default", "yes: the encoder of the demo, the README's examples and the benchmarks"))
        pairs.append(("use", f"--encoder {name} / load_artifact({name!r}) / crptpro_kwargs({name!r})"))
        blocks.append(f"{name}\n{_lines(pairs)}")
    return "\n\n".join(blocks)


def _last_batch_usage(final: dict[str, Any]) -> str:
    """The last logged training batch's prototype counts, naming the sample (the probe frames' come below)."""
    if "n_used" not in final:
        return "-"
    raw = f", {final['n_used_raw']:.0f} as nearest prototype" if "n_used_raw" in final else ""
    return f"last training batch: {final['n_used']:.0f} by its Sinkhorn targets{raw}"


def _collapse_lines(diagnostics: dict[str, Any], num_protos: int) -> list[tuple[str, Any]]:
    """Final collapse diagnostics on the probe frames, or a line saying the artifact has none."""
    from sb3_crptpro.pretraining.diagnostics import collapse_verdict

    if not diagnostics:
        return [("collapse check", "no diagnostics stored (artifact written before 0.x or with probe_frames=0)")]
    d = diagnostics
    rank = f"{d['eff_rank']:.1f} (worst domain {d['eff_rank_min']:.1f}; collapsed < 5, random init ~15-80)"
    used = f"{d['n_used']:.0f} used on the probe frames, largest share {100 * d['max_share']:.0f}%"
    return [
        ("collapse check", collapse_verdict(d, num_protos)),
        ("effective rank", rank),
        ("nearest prototypes", used),
        ("margin below log M", f"{d.get('margin', float('nan')):.4f} nats"),
    ]


def verify_datasets(path: str | Path) -> dict[Path, str | None]:
    """Check every shard of every dataset under ``path`` as ``pretrain`` would (file present, size, sha256).

    :return: ``{domain directory: None if intact, else the first problem found}`` (issue 14: ``inspect`` said
        ``complete True`` for a dataset with a truncated shard that ``pretrain`` refused)
    """
    from sb3_crptpro.data.sampler import find_domain_dirs
    from sb3_crptpro.data.store import DatasetError, ShardReader, read_manifest

    problems: dict[Path, str | None] = {}
    for directory in find_domain_dirs(path):
        manifest = read_manifest(directory)
        problems[directory] = None
        for entry in manifest["shards"]:
            try:
                ShardReader(directory, entry, manifest, verify=True)
            except DatasetError as exc:
                problems[directory] = str(exc)
                break
    return problems


def describe_datasets(path: str | Path, problems: dict[Path, str | None] | None = None) -> str:
    """One block per dataset found under ``path`` (a domain folder or a folder of them), with what
    :func:`verify_datasets` found (computed here unless ``problems`` is given)."""
    from sb3_crptpro.data.store import read_manifest

    problems = verify_datasets(path) if problems is None else problems
    blocks = []
    for directory, problem in problems.items():
        manifest = read_manifest(directory)
        env, counts, collection = manifest["env"], manifest["counts"], manifest.get("collection", {})
        per = counts["bytes"] / max(counts["transitions"], 1)
        shards = len(manifest["shards"])
        pairs = [
            ("task", env["task"]),
            ("complete", manifest.get("complete", False)),
            ("verified", f"FAILED: {problem}" if problem else f"all {shards} shards: size and sha256 match"),
            ("transitions", f"{counts['transitions']} ({counts['episodes']} episodes, {shards} shards)"),
            ("frames", f"{counts['frames']} x {manifest['shapes']['frame']} uint8"),
            ("env", f"{env['image_size']} px, action repeat {env['action_repeat']}, camera {env['camera_id']}"),
            ("render preset", env["render"]),
            ("state / action dims", f"{manifest['shapes']['state_dim']} / {manifest['shapes']['action_dim']}"),
            ("collection", f"{collection.get('policy', '?')}, seed {collection.get('seed', '?')}"),
            ("size", f"{counts['bytes'] / 2**20:.1f} MiB ({per / 1024:.1f} KiB/transition)"),
        ]
        blocks.append(f"{directory}: dataset ({manifest['format']} v{manifest['format_version']})\n{_lines(pairs)}")
    return "\n\n".join(blocks)


def describe(path: str | Path) -> str:
    """Describe an artifact file or a dataset folder, whichever ``path`` is (both are verified while read)."""
    from sb3_crptpro.common.artifact import resolve_artifact_path

    if Path(path).is_dir():
        return describe_datasets(path)
    return describe_artifact(resolve_artifact_path(path))  # a file, or a shipped encoder's name
