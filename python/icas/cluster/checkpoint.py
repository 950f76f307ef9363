"""Per-batch similarity checkpoints: a killed run resumes without recomputing
finished batches. One JSON file per batch, written atomically; it is used only
if the batch's files, method and parameters are the same as now.

Besides the linked pairs and their scores a checkpoint may hold ``extra``
entries: for a verified method (``imagehash+orb``) the evidence of every
candidate pair (``evidence``: candidates, first and second scores), and the
batch's guarded labels and mean similarities with the guard that made them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from icas.cluster.output import write_json


def plan_path(out_dir: Path) -> Path:
    return Path(out_dir) / "checkpoints" / "plan.json"


def save_plan(out_dir: Path, key: dict, items) -> None:
    """The run's input files (paths relative to the input folder, in the
    order they are processed), saved before any file is transferred: a
    resumed run works on the same list even after a ``move`` took some of
    them away, so batches, cluster numbers and destinations come out the same."""
    p = plan_path(out_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_json(p, {"key": key, "items": items})


def load_plan(out_dir: Path, key: dict):
    """The saved items if a plan with this key exists, else None."""
    try:
        data = json.loads(plan_path(out_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    return data.get("items")


def path_for(out_dir: Path, batch: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"batch_{batch}.json"


def save(
    out_dir: Path,
    batch: int,
    key: dict,
    paths: list[str],
    skipped: list[tuple[str, str]],
    edges: np.ndarray,
    scores: np.ndarray,
    extra: dict | None = None,
) -> None:
    p = path_for(out_dir, batch)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        p,
        {
            "key": key,
            "paths": paths,
            "skipped": [list(s) for s in skipped],
            "edges": np.asarray(edges).tolist(),
            "scores": [float(s) for s in np.asarray(scores)],
            **(extra or {}),
        },
    )


def load_record(out_dir: Path, batch: int, key: dict) -> dict | None:
    """The checkpoint's entries if one with this key exists, else None;
    ``edges`` and ``scores`` as arrays, ``skipped`` as tuples."""
    p = path_for(out_dir, batch)
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # a torn checkpoint is recomputed
    if data.get("key") != key:
        return None
    data["edges"] = np.asarray(data["edges"], dtype=np.int64).reshape(-1, 2)
    data["scores"] = np.asarray(data["scores"], dtype=np.float32)
    data["skipped"] = [tuple(s) for s in data["skipped"]]
    return data


def load(out_dir: Path, batch: int, key: dict):
    """(paths, skipped, edges, scores) if a checkpoint with this key exists, else None."""
    data = load_record(out_dir, batch, key)
    if data is None:
        return None
    return data["paths"], data["skipped"], data["edges"], data["scores"]
