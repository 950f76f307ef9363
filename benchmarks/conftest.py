"""Benchmark conventions.

Each group holds icas and the straightforward reference on the same inputs.
A benchmark records how many pairs one call computes in
``benchmark.extra_info["pairs"]`` and whether it is the reference
(``benchmark.extra_info["role"] = "reference"`` or ``"icas"``); the summary
below prints time per pair and the speed ratio of every group from one run.
"""

from __future__ import annotations

_ROWS: list[tuple[str, str, str, float]] = []


def pytest_benchmark_update_json(config, benchmarks, output_json):  # pragma: no cover
    pass


def _per_pair(bench) -> float | None:
    stats = getattr(bench, "stats", None)
    if stats is None or not getattr(stats, "data", None):
        return None
    pairs = bench.extra_info.get("pairs", 1) or 1
    return stats.mean / pairs


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, dict[str, list]] = {}
    for bench in session.benchmarks:
        role = bench.extra_info.get("role", "icas")
        per = _per_pair(bench)
        if per is not None:
            groups.setdefault(bench.group or bench.name, {}).setdefault(role, []).append(
                (bench.name, per)
            )
    if not groups:
        return
    tr = terminalreporter
    tr.section("icas speed ratios (reference time per pair / icas time per pair)")
    for group, roles in sorted(groups.items()):
        refs = roles.get("reference", [])
        for name, per in roles.get("icas", []):
            line = f"{group:32s} {name:48s} {per * 1e6:12.4f} us/pair"
            for ref_name, ref_per in refs:
                line += f"  {ref_per / per:9.1f}x vs {ref_name}"
            tr.write_line(line)
