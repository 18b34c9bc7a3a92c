#!/usr/bin/env python3
"""Regenerates docs/BENCHMARKS.md: runs forgeflow-stress's scenarios with
--compare --json (the peer baselines in the same process, on the same
inputs) and prints one table per scenario, each with its command, machine
and date.

    python3 scripts/benchmarks.py                   # full-size runs, print
    python3 scripts/benchmarks.py --quick           # CI-sized runs
    python3 scripts/benchmarks.py --out docs/BENCHMARKS.md
    python3 scripts/benchmarks.py --binary .dev/forgeflow-stress --out "$OUT/b.md"
    python3 scripts/benchmarks.py --part "H100 host" --out docs/BENCHMARKS.md

With --part, the runs become a part of their own ("# Benchmarks: PART") that
replaces the part of that name in the --out file, or is added to its end.
Either way only the part written is replaced: the other machines' figures
in the --out file stay.

Without --binary it builds the release binary first. Exit status 1 when a
scenario fails or reports integrity failures (its table still appears).
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile

# (scenario, full-size arguments, quick arguments)
SCENARIOS = [
    ("graph", ["--frames", "2000"], ["--frames", "400"]),
    ("upload", ["--frames", "600"], ["--frames", "300"]),
    ("pool", ["--simulate-hours", "1"], ["--simulate-hours", "0.05"]),
    # --frames sets texture's time per decode rate: 0.4 s per 2000.
    ("texture", ["--frames", "4000"], ["--frames", "200"]),
    ("vt", ["--frames", "600"],
     ["--size", "4096", "--budget-mb", "64", "--resolution", "480x270", "--frames", "120"]),
    ("all", ["--duration", "60s"],
     ["--frames", "600", "--size", "4096", "--resolution", "320x180"]),
]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def flatten(d, prefix=""):
    """Scalar values of nested objects, named a.b.c; lists are left out."""
    out = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[name] = v
    return out


def fmt(v):
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v)


def table(report, command, date):
    name = report.get("scenario", "?")
    adapter = report.get("adapter") or {}
    cpu = report.get("cpu") or {}
    integrity = report.get("integrity") or {}
    lines = [f"## {name}", ""]
    lines.append(f"- command: `{command}`")
    lines.append(
        f"- machine: {cpu_model()}, {cpu.get('threads', os.cpu_count())} threads; "
        f"GPU: {adapter.get('name', 'none')} ({adapter.get('backend', '-')}, "
        f"{adapter.get('device_type', '-')})"
    )
    lines.append(f"- date: {date}; forgeflow {report.get('version', '?')}")
    lines.append(
        f"- integrity: {integrity.get('checks', 0):,} checks, "
        f"{integrity.get('failures', 0):,} failures"
    )
    lines.append("")
    metrics = flatten(report.get("metrics") or {})
    compare = {peer: flatten(m) for peer, m in (report.get("compare") or {}).items()
               if isinstance(m, dict)}
    peers = sorted(compare)
    lines.append("| metric | forgeflow | " + " | ".join(peers) + (" |" if peers else "|"))
    lines.append("| --- | --- |" + " --- |" * len(peers))
    for key in sorted(set(metrics) | {k for m in compare.values() for k in m}):
        row = [fmt(metrics.get(key))] + [fmt(compare[p].get(key)) for p in peers]
        lines.append(f"| `{key}` | " + " | ".join(row) + " |")
    ratios = flatten(report.get("ratios") or {})
    if ratios:
        lines += ["", "| ratio | value |", "| --- | --- |"]
        lines += [f"| `{k}` | {fmt(v)} |" for k, v in sorted(ratios.items())]
    lines.append("")
    return "\n".join(lines)


def with_part(path, heading, part):
    """The document at `path` with `part` in place of the part under
    `heading` (up to the next "# " heading), or added at its end."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return part
    start = next((i for i, l in enumerate(lines) if l == heading), None)
    if start is None:
        return "\n".join(lines).rstrip("\n") + "\n\n" + part
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# ")),
               len(lines))
    kept = lines[:start] + part.splitlines() + ([""] + lines[end:] if end < len(lines) else [])
    return "\n".join(kept) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI-sized runs")
    ap.add_argument("--binary", help="a forgeflow-stress binary (default: build one)")
    ap.add_argument("--only", help="comma-separated scenarios")
    ap.add_argument("--out", help="write the document here instead of printing it")
    ap.add_argument("--part", help="write the runs as this part of the --out file")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = args.binary
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--bin", "forgeflow-stress"],
                       cwd=root, check=True)
        binary = os.path.join(root, "target", "release", "forgeflow-stress")
    only = set(args.only.split(",")) if args.only else None
    date = datetime.date.today().isoformat()
    sections, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        # Mesa's drivers want a runtime directory.
        env = dict(os.environ)
        env.setdefault("XDG_RUNTIME_DIR", tmp)
        for name, full, quick in SCENARIOS:
            if only and name not in only:
                continue
            extra = quick if args.quick else full
            compare = [] if name == "all" else ["--compare"]
            out = os.path.join(tmp, f"{name}.json")
            argv = [binary, name, *extra, *compare, "--quiet", "--json", out]
            shown = "forgeflow-stress " + " ".join(shlex.quote(a) for a in argv[1:-2])
            print(f"running: {shown}", file=sys.stderr)
            run = subprocess.run(argv, cwd=root, env=env)
            if run.returncode != 0:
                failed = True
            try:
                with open(out) as f:
                    sections.append(table(json.load(f), shown, date))
            except (OSError, json.JSONDecodeError) as e:
                failed = True
                sections.append(f"## {name}\n\n`{shown}` gave no report ({e}); "
                                f"exit status {run.returncode}.\n")
    doc = "\n".join([
        "# Benchmarks" + (f": {args.part}" if args.part else ""),
        "",
        "Generated by `python3 scripts/benchmarks.py"
        + (" --quick" if args.quick else "")
        + (f' --part "{args.part}"' if args.part else "") + "`: each scenario of `forgeflow-stress` "
        "run once with `--compare` (the peer baselines in the same process, on the same "
        "inputs; `all` has no peer). Ratios come from one run; absolute figures hold for "
        "the machine named. The metric names are the JSON report's "
        "(docs/ARCHITECTURE.md, \"Reports of the tools\").",
        "",
        *sections,
    ])
    if args.out:
        # Only this part is replaced: the other machines' parts stay.
        heading = "# Benchmarks" + (f": {args.part}" if args.part else "")
        doc = with_part(args.out, heading, doc)
    if args.out:
        with open(args.out, "w") as f:
            f.write(doc)
    else:
        print(doc)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
