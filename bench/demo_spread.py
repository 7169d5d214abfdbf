"""Does tuning matter on the demo data? Per task, 8 random configs at full budget, side by side.

For each task, draws `--trials` configs from its default search space with Optuna's
RandomSampler and runs each through the real trial loop (local Ray Tune, FIFO: no pruning, every
trial runs the space's whole epoch budget; health guards on), then prints the best trial's target
metric (best epoch, as a sweep ranks trials), the median trial's, their difference, and how far
the best trial stays from the metric's ceiling (1.0 for every demo metric). A demo where
configurations really differ has a spread of at least 0.1 and no trial within 0.02 of 1.0.

    python -m bench.demo_spread [--tasks retrieval anomaly ...] [--trials 8] [--seed 0]
                                [--data-root DIR] [--max-epochs E]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from optuna.samplers import RandomSampler

from bench.sweep_runs import median, run_trials
from orchestrator.registry import builtin_task_names

CEILING = 1.0  # R@1, AUROC and accuracy all top out at 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=builtin_task_names())
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=None, help="default: the space's budget")
    parser.add_argument("--data-root", type=Path,
                        default=Path(tempfile.gettempdir()) / "orchestrate-bench")
    parser.add_argument("--verbose", action="store_true", help="print every trial")
    args = parser.parse_args()

    rows = []
    for name in args.tasks:
        started = time.perf_counter()
        spec, records = run_trials(name, args.data_root, trials=args.trials,
                                   sampler=RandomSampler(seed=args.seed), max_epochs=args.max_epochs)
        seconds = time.perf_counter() - started
        bests = [record.best for record in records]
        finite = sorted(value for value in bests if value == value)
        stopped = sum(record.guard not in (None, "plateau") for record in records)
        failed = sum(record.error is not None for record in records)
        if args.verbose:
            for record in sorted(records, key=lambda r: -r.best if r.best == r.best else 0):
                curve = " ".join(f"{value:.3f}" for value in record.history)
                print(f"[{name}] best {record.best:.4f} guard {record.guard} error {record.error} "
                      f"| {curve} | {record.sampled}", flush=True)
        best = max(finite) if finite else float("nan")
        rows.append((name, spec.metric, len(records), best, median(bests), min(finite or [float("nan")]),
                     stopped, failed, seconds))
        print(f"[{name}] best {best:.4f} median {median(bests):.4f} ({seconds:.0f} s)", flush=True)

    print()
    print(f"{'task':15} {'metric':13} {'trials':>6} {'best':>7} {'median':>7} {'worst':>7} "
          f"{'best-median':>11} {'1-best':>7} {'stopped':>7} {'failed':>6} {'wall s':>7}")
    for name, metric, count, best, middle, worst, stopped, failed, seconds in rows:
        print(f"{name:15} {metric:13} {count:6d} {best:7.3f} {middle:7.3f} {worst:7.3f} "
              f"{best - middle:11.3f} {CEILING - best:7.3f} {stopped:7d} {failed:6d} {seconds:7.0f}")


if __name__ == "__main__":
    main()
