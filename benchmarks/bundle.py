"""Verifiable bundles at 1M events: export speed, file size, and ``verify bundle`` on one core.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/bundle.py --quick    # 100k-event tenant
    .venv/bin/python benchmarks/bundle.py            # 1M events (seeded once, cached)

Steps, for two bundles of the seeded tenant (``_seed``: one tenant of ``--events``, cached
under ``benchmarks/.work/``):

- **everything**: the whole tenant, every event included;
- **1 %**: the action whose count is nearest 1 % of the log (found with ``Store.distinct``),
  so 99 % of the leaves are carried as leaf inputs with one disclosed field.

For each: the export, in-process (``ExportService.create`` + ``lines``, written to a file, as
``GET /v1/exports/{id}/download`` streams it; wall and CPU seconds, leaves/s), the file size,
and ``taskset -c 0 python -m trailkeep verify bundle FILE --key KEY`` (the whole CLI process on
one core, ``--runs`` times; target ≤ 10 s for 1M events, judged on CPU seconds since the
machine is shared; wall printed beside). As a yardstick taken at the same moment on the same
machine, ``verify dump`` of the same tenant (``dump_lines``; once): its quiet-machine time is in
docs/integrity.md, so the ratio carries over. The exit status is non-zero only when the benchmark
could not run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# This checkout's code, not whichever trailkeep the interpreter has installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _main import run_benchmark
from _seed import MAIN_TENANT, Seeded, SeedSpec, code_state, seeded

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS_PER_MILLION = 10.0


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lines: list[str] = [code_state()]
        self.files: list[Path] = []

    def cleanup(self) -> None:
        if not self.args.keep:
            for path in self.files:
                path.unlink(missing_ok=True)

    def run(self) -> None:
        from trailkeep.api.services import Services
        from trailkeep.query.filters import EventQuery
        from trailkeep.service.admin_trail import Actor
        from trailkeep.service.selection import Selection
        from trailkeep.settings import Settings

        seed = seeded(SeedSpec(main=self.args.events, others=0), Path(self.args.work))
        services = Services.build(
            Settings(database=seed.database, signing_key=seed.signing_key,
                     sqlite_synchronous="NORMAL")
        )  # fmt: skip
        try:
            n = services.store.tree_head(MAIN_TENANT).size
            counts = services.store.distinct(MAIN_TENANT, ("action",), EventQuery(), 200)
            action, hits = min(counts, key=lambda pair: abs(pair[1] - n / 100))
            cases = [
                ("everything", Selection()),
                (f"1% (action={action}, {hits:,} events)", Selection({"action": [str(action)]})),
            ]
            for name, selection in cases:
                path = Path(self.args.work) / f"bundle-{len(self.files)}.jsonl"
                self.files.append(path)
                self.export(services, name, selection, path, n, Actor("benchmark", "cli"))
                self.verify(seed, "bundle", name, path, n)
            if not self.args.no_yardstick:
                self.yardstick(services, seed, n)
        finally:
            services.close()
        print("\nsummary")
        for line in self.lines:
            print(f"  {line}")

    def export(
        self, services: object, name: str, selection: object, path: Path, n: int, actor: object
    ) -> None:
        exports = services.exports  # type: ignore[attr-defined]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        job = exports.create(MAIN_TENANT, selection, "bundle", actor)
        with path.open("wb") as fh:
            for chunk in exports.lines(job):
                fh.write(chunk)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        size = path.stat().st_size
        self.lines.append(
            f"export {name}: {n:,} leaves in {wall:.1f} s wall / {cpu:.1f} s CPU ="
            f" {n / wall:,.0f} leaves/s wall ({n / cpu:,.0f} per CPU-s); file {size / 1e6:,.0f}"
            f" MB ({size / n:,.0f} bytes per leaf)"
        )
        print(self.lines[-1])

    def yardstick(self, services: object, seed: Seeded, n: int) -> None:
        from trailkeep.service.dump import dump_lines

        path = Path(self.args.work) / "dump.jsonl"
        self.files.append(path)
        with path.open("wb") as fh:
            fh.writelines(dump_lines(services.store, MAIN_TENANT))  # type: ignore[attr-defined]
        self.verify(seed, "dump", "(yardstick: the same tenant's dump)", path, n, runs=1)

    def verify(
        self, seed: Seeded, kind: str, name: str, path: Path, n: int, runs: int | None = None
    ) -> None:
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        argv = [*pin, sys.executable, "-m", "trailkeep", "verify", kind, str(path), "--key"]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "AXONFLOW_TELEMETRY": "off"}
        walls, cpus = [], []
        for _ in range(runs or self.args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            done = subprocess.run(
                [*argv, seed.public_key], capture_output=True, text=True, env=env, check=False
            )
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0 or "OK" not in done.stdout:
                raise RuntimeError(f"verify {kind} failed: {(done.stdout + done.stderr)[-800:]}")
        cpu = statistics.median(cpus)
        target = TARGET_SECONDS_PER_MILLION * n / 1_000_000
        verdict = "MET" if cpu <= target else "MISSED"
        self.lines.append(
            f"verify {kind} {name}, 1 core: CPU min/med {min(cpus):.2f} / {cpu:.2f} s ="
            f" {n / cpu:,.0f} leaves/s (target <= {target:.1f} s: {verdict}); wall min/med"
            f" {min(walls):.2f} / {statistics.median(walls):.2f} s"
        )
        print(self.lines[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a 100k-event tenant")
    p.add_argument("--events", type=int, help="events of the tenant (default 1,000,000)")
    p.add_argument("--runs", type=int, default=3, help="runs of verify bundle per file")
    p.add_argument("--keep", action="store_true", help="keep the bundle files")
    p.add_argument("--no-yardstick", action="store_true", help="skip verify dump")
    p.add_argument(
        "--work",
        default=str(Path(__file__).resolve().parent / ".work"),
        help="where seeded databases (and the bundles, while measured) are kept",
    )
    args = p.parse_args(argv)
    if args.events is None:
        args.events = 100_000 if args.quick else 1_000_000
    return args


if __name__ == "__main__":
    sys.exit(run_benchmark(Bench(parse_args())))
