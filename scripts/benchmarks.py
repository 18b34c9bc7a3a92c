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
    python3 scripts/benchmarks.py --tracy-binary B --tracy-capture ../shared/tools/tracy/tracy-capture

With --tracy-binary (forgeflow-stress built with --features tracy) and
--tracy-capture (Tracy's own capture tool), `all` also runs with that
binary while the capture records it, and a section compares its frame
times with the plain build's (the feature's cost while a profiler listens).

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
import signal
import subprocess
import sys
import tempfile

# (scenario, full-size arguments, quick arguments)
SCENARIOS = [
    ("graph", ["--frames", "2000"], ["--frames", "400"]),
    ("upload", ["--frames", "600"], ["--frames", "300"]),
    # The GPU scatter forced: `auto` leaves it off on a software rasterizer
    # (copy commands, cheaper there for the GPU side), where this shows the
    # render thread's time with it (on a hardware GPU it is `auto`'s path).
    ("upload", ["--frames", "600", "--gpu-scatter", "always"],
     ["--frames", "300", "--gpu-scatter", "always"]),
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
    # Each target the scenario checks, and whether this run met it.
    targets = report.get("targets") or {}
    if targets:
        lines += ["", "| target | wanted | met |", "| --- | --- | --- |"]
        lines += [f"| `{k}` | {t.get('target', '')} | {'yes' if t.get('met') else '**no**'} |"
                  for k, t in sorted(targets.items())]
    lines.append("")
    return "\n".join(lines)


def tracy_section(args, argv, tmp, env, root, plain, date):
    """`all` again with the Tracy build while tracy-capture records it: its
    frame times against the plain build's `plain` report."""
    trace = os.path.join(tmp, "all.tracy")
    out = os.path.join(tmp, "all-tracy.json")
    duration = 60
    if "--duration" in argv:
        duration = int(argv[argv.index("--duration") + 1].rstrip("s"))
    capture = subprocess.Popen(
        [args.tracy_capture, "-o", trace, "-a", "127.0.0.1", "-f", "-s", str(duration + 30)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    traced = [args.tracy_binary, *argv[1:-1], out]
    shown = "forgeflow-stress (--features tracy) " + " ".join(shlex.quote(a) for a in traced[1:-2])
    print(f"running: {shown}, recorded by tracy-capture", file=sys.stderr)
    run = subprocess.run(traced, cwd=root, env=env)
    # Ctrl-C: the capture stops, saves and prints what it recorded.
    capture.send_signal(signal.SIGINT)
    printed = capture.communicate(timeout=120)[0]
    try:
        with open(out) as f:
            report = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return f"## all with Tracy recording\n\n`{shown}` gave no report ({e}).\n", False
    zones = next((l.split(":", 1)[1].strip() for l in printed.splitlines()
                  if l.startswith("Zones:")), "?")
    m, p = report.get("metrics") or {}, plain.get("metrics") or {}
    lines = ["## all with Tracy recording", "",
             f"- command: `{shown}`, while `tracy-capture -a 127.0.0.1` records it "
             f"(zones recorded: {zones}); against the plain build's `all` above",
             f"- date: {date}", "",
             "| metric | with Tracy | without | ratio |", "| --- | --- | --- | --- |"]
    ok = run.returncode == 0
    for key in ["frame_cpu_ms_p50", "frame_cpu_ms_p99", "frame_cpu_own_ms_p50"]:
        a, b = m.get(key), p.get(key)
        ratio = a / b if isinstance(a, (int, float)) and b else None
        lines.append(f"| `{key}` | {fmt(a)} | {fmt(b)} | {fmt(ratio)} |")
    lines.append("")
    return "\n".join(lines), ok


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
    ap.add_argument("--tracy-binary", help="forgeflow-stress built with --features tracy")
    ap.add_argument("--tracy-capture", help="Tracy's tracy-capture, to record it")
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
                    plain = json.load(f)
                sections.append(table(plain, shown, date))
            except (OSError, json.JSONDecodeError) as e:
                plain = None
                failed = True
                sections.append(f"## {name}\n\n`{shown}` gave no report ({e}); "
                                f"exit status {run.returncode}.\n")
            if name == "all" and args.tracy_binary and args.tracy_capture and plain:
                section, ok = tracy_section(args, argv, tmp, env, root, plain, date)
                sections.append(section)
                failed = failed or not ok
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
