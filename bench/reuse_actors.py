"""What a new worker process per trial costs: the same short trials under Ray Tune with
`reuse_actors` off (Tune's default: one actor started per trial) and on, side by side in one
Ray session, the two settings alternating.

Every trial trains the broken_space bench task's healthy default config for `--epochs` epochs
through bench/epochs.py (the sweep's training pieces), one CPU each, `--concurrency` at a
time. Prints per setting the experiment's wall time per trial and the ratio on/off.

    python -m bench.reuse_actors [--trials 8] [--epochs 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from bench.epochs import TrialSpec, trial_epochs
from orchestrator.health import HealthConfig
from orchestrator.registry import load_task

REFERENCE = "bench.tasks.broken_space:task"


def experiment(trial_spec: TrialSpec, trials: int, concurrency: int, reuse: bool,
               storage: Path) -> float:
    """Wall seconds of one Tune experiment of `trials` identical trials."""
    from ray import tune

    def trainable(config):
        for result in trial_epochs(config, trial_spec):
            tune.report({"val/mean_r1": result["val/mean_r1"]})

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"seed": tune.grid_search(list(range(trials)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrency, reuse_actors=reuse),
        run_config=tune.RunConfig(storage_path=str(storage), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("ray").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-reuse-") as tmp:
        data_dir = Path(tmp) / "data"
        load_task(REFERENCE).make_demo_data(data_dir, seed=0)
        spec = TrialSpec(REFERENCE, str(data_dir), args.epochs, "val/mean_r1", "max", HealthConfig())
        ray.init(address="local", num_cpus=args.concurrency, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        walls: dict[bool, list[float]] = {False: [], True: []}
        try:
            experiment(spec, args.concurrency, args.concurrency, False, Path(tmp))  # warm-up
            for round_index in range(args.rounds):
                for reuse in ((False, True) if round_index % 2 == 0 else (True, False)):
                    walls[reuse].append(experiment(spec, args.trials, args.concurrency, reuse,
                                                   Path(tmp)) / args.trials)
        finally:
            ray.shutdown()
    off, on = statistics.mean(walls[False]), statistics.mean(walls[True])
    print(f"{args.trials} trials x {args.epochs} epochs, concurrency {args.concurrency}, "
          f"{args.rounds} rounds, {os.cpu_count()} cores")
    print("| reuse_actors | wall s per trial (each round) | mean |")
    print("|---|---|---|")
    for reuse in (False, True):
        rounds = ", ".join(f"{w:.2f}" for w in walls[reuse])
        print(f"| {reuse} | {rounds} | {statistics.mean(walls[reuse]):.2f} |")
    print(f"\nreuse on / off: {on / off:.2f}x wall")


if __name__ == "__main__":
    main()
