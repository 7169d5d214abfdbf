"""How busy a cluster's slots are when `orchestrate sweep` runs every task at once, against one
task after another, side by side in one invocation on one simulated cluster.

The cluster (`ray.cluster_utils.Cluster`, all on this machine): a head that runs no trial and
`--nodes` worker nodes, each declaring `--slots-per-node` units of a custom resource `slot` (a
GPU stand-in) and as many CPUs. Every trial reserves one slot (`--resource-per-trial slot=1`)
and one CPU. The built-in demo tasks are swept twice through the real CLI against that cluster,
`--trials` trials each of at most `--max-epochs` epochs (0: the spaces' budgets): all at once
(the default), then `--one-at-a-time`.

Printed per mode: slot use = busy slot-seconds / (slots x wall seconds), where a trial is busy
from Ray Tune's start of the trial to its end (complete, pruned, stopped or failed), as the
sweep's MLflow trial runs record them (their start and end times), and the wall is the first
trial's start to the last trial's end (Ray's and the preflight's start-up left out: they are the
same for both modes). Slots stay idle when the tasks left have fewer trials to run than there
are slots (a task's last ASHA rungs), while a new worker process starts for a trial, and between
two tasks run one after another (where one at a time draws the first task's best trials; all at
once draws every task's after the last trial ended, orchestrator/concurrent_sweeps.py, so the
drawings fall outside its wall but inside its command time). The machine's load average is
printed beside each mode: on a shared machine worker start-up, and so slot use, depends on it.

    python -m bench.cluster_use [--trials 8] [--max-epochs 4] [--nodes 2] [--slots-per-node 2]

The demos' data is written once, in a temporary directory, before the first sweep's trials.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The simulated cluster listens on 127.0.0.1 only; Ray reads this once, when first imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

REPO = Path(__file__).resolve().parent.parent
SLOT = "slot"
MODES = {"all at once": [], "one at a time": ["--one-at-a-time"]}


@dataclass
class SweepUse:
    """One sweep's trials as (start, end) seconds, and how long the command took."""

    mode: str
    intervals: list[tuple[float, float]]
    command_seconds: float
    load: tuple[float, float]  # the machine's 1-minute load average when the sweep began, ended

    @property
    def wall(self) -> float:
        """First trial's start to last trial's end, seconds."""
        return max(end for _, end in self.intervals) - min(start for start, _ in self.intervals)

    @property
    def busy(self) -> float:
        """Slot-seconds the trials held (one slot each)."""
        return sum(end - start for start, end in self.intervals)

    def slot_use(self, slots: int) -> float:
        return self.busy / (slots * self.wall)

    def idle_in_tail(self, slots: int) -> float:
        """Idle slot-seconds after the last trial started: no trial was left to run on them."""
        last_start = max(start for start, _ in self.intervals)
        end = max(end for _, end in self.intervals)
        busy_after = sum(end_ - max(start, last_start) for start, end_ in self.intervals
                         if end_ > last_start)
        return slots * (end - last_start) - busy_after


def start_cluster(nodes: int, slots_per_node: int):
    """A head without CPUs (no trial runs there) and `nodes` nodes of `slots_per_node` slots."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False})
    for _ in range(nodes):
        cluster.add_node(num_cpus=slots_per_node, resources={SLOT: slots_per_node})
    cluster.wait_for_nodes()
    return cluster


def sweep(mode: str, address: str, workdir: Path, tasks: list[str], trials: int,
          max_epochs: int | None) -> SweepUse:
    """Run `orchestrate sweep` of the tasks against the cluster; its trials' times from MLflow."""
    executable = str(Path(sys.executable).parent / "orchestrate")
    name = mode.replace(" ", "-")
    command = [executable, "sweep", *[arg for task in tasks for arg in ("--task", task)],
               "--trials", str(trials), *(["--max-epochs", str(max_epochs)] if max_epochs else []),
               "--address", address,
               "--cpus-per-trial", "1", "--resource-per-trial", f"{SLOT}=1", "--name", name,
               *MODES[mode]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("ORCHESTRATE_STORAGE", None)
    print(f"[{mode}] {' '.join(command[1:])}", flush=True)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: a task without a finished trial, still a sweep that ran
        raise SystemExit(f"error: orchestrate sweep ({mode}) exited {done.returncode}:\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return SweepUse(mode, trial_intervals(workdir, name, tasks), seconds,
                    (load_before, os.getloadavg()[0]))


def trial_intervals(workdir: Path, sweep_name: str, tasks: list[str]) -> list[tuple[float, float]]:
    """(start, end) in seconds of every trial run the sweep left in MLflow."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    intervals = []
    for task in tasks:
        experiment = client.get_experiment_by_name(task)
        runs = client.search_runs(
            [experiment.experiment_id],
            f"tags.`orchestrate.role` = 'trial' and tags.`orchestrate.sweep` = '{sweep_name}'",
            max_results=10000)
        intervals += [(run.info.start_time / 1000, run.info.end_time / 1000) for run in runs]
    return intervals


def main(argv: list[str] | None = None) -> None:
    import ray

    from orchestrator.registry import builtin_task_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per task")
    parser.add_argument("--max-epochs", type=int, default=4,
                        help="epoch budget per trial; 0: each task's space's own (4 to 8 epochs)")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--slots-per-node", type=int, default=2)
    parser.add_argument("--task", action="append", help="task to sweep; repeat [every built-in]")
    parser.add_argument("--workdir", type=Path,
                        help="keep the sweeps' data, results and MLflow store here [a temporary directory]")
    args = parser.parse_args(argv)
    tasks = args.task or builtin_task_names()
    slots = args.nodes * args.slots_per_node
    cluster = start_cluster(args.nodes, args.slots_per_node)
    uses = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cluster-use-") as temporary:
            workdir = args.workdir or Path(temporary)
            workdir.mkdir(parents=True, exist_ok=True)
            for mode in MODES:
                uses.append(sweep(mode, cluster.address, workdir.resolve(), tasks, args.trials,
                                  args.max_epochs))
    finally:
        ray.shutdown()
        cluster.shutdown()
    budget = f"up to {args.max_epochs} epochs" if args.max_epochs else "each space's epoch budget"
    print(f"\n{len(tasks)} tasks x {args.trials} trials, {budget} each; "
          f"{args.nodes} nodes x {args.slots_per_node} slots; {os.cpu_count()} cores")
    print("| mode | trials | wall s (first trial start to last end) | busy slot-s | slot use "
          "| idle slot-s before the last trial start / after | command s | load average at start / end |")
    print("|---|---|---|---|---|---|---|---|")
    for use in uses:
        idle = slots * use.wall - use.busy
        tail = use.idle_in_tail(slots)
        print(f"| {use.mode} | {len(use.intervals)} | {use.wall:.1f} | {use.busy:.1f} | "
              f"{use.slot_use(slots):.2f} | {idle - tail:.0f} / {tail:.0f} | "
              f"{use.command_seconds:.0f} | {use.load[0]:.1f} / {use.load[1]:.1f} |")
    at_once, one_by_one = uses
    print(f"\nall at once: {at_once.wall / one_by_one.wall:.2f}x the wall time of one at a time")


if __name__ == "__main__":
    main()
