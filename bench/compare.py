"""Side by side, in one invocation: what a user would pick instead of `orchestrate sweep`, on the
same task, space, data and seeds.

Arms (each gets the same trial count, epoch budget, concurrency and sampler seed):
  random   full-budget random search: Ray Tune, Optuna's RandomSampler, FIFO (every trial runs
           every epoch)
  asha     plain Ray Tune: ASHA (the space's grace period and reduction factor) + stock
           OptunaSearch (TPE, start-up min(10, trials / 2), as users write it), no guards
  hyperband, sha
           Optuna alone: TPE with HyperbandPruner / SuccessiveHalvingPruner (same min resource
           and reduction factor as ASHA), `concurrency` threads
  orchestrate
           `orchestrate sweep` as a user runs it (a subprocess with its own Ray): ASHA, the
           health guards, the guard-aware searcher (orchestrator/searcher.py), MLflow

Every arm trains through the same per-epoch function (bench/epochs.py, or the sweep's own
trial loop for `orchestrate`, built from the same pieces), so differences come from what each
arm samples and when it stops trials. Printed per arm, with mean and spread (min-max) over seeds:
  trial-epochs     epochs trained, all trials together
  best             the best validation metric any trial reached at any epoch
  gap              how far that is below (max) / above (min) the best of all arms, in %
  broken epochs    epochs spent on broken trials: configs in the task's broken region when the
                   task defines `in_broken_region(config)` (bench/tasks/broken_space.py), else
                   trials whose epochs drew a failure verdict from the guards
  reports to stop  on broken trials where a failure became visible (the guards' first failure
                   verdict), the reports the trial went on making after that one (0: stopped
                   at once)
  wall             the arm's wall time (its Ray start-up included) / the full-budget arm's
  broken share     the share of trials sampled in the broken region in the first and second
                   half of the sweep (sampling order)
and, from the full-budget arm's learning curves, how well the metric at epoch k ranks configs
by their final result (what a first rung at epoch k can see).

    python -m bench.compare [--task bench.tasks.broken_space:task] [--trials 12]
        [--max-epochs 12] [--seeds 3] [--arms random asha hyperband sha orchestrate]
        [--first-seed 0] [--grace-period G] [--reduction-factor R] [--workdir DIR]

--grace-period and --reduction-factor replace the space's budget for every arm that prunes
(ASHA, both Optuna pruners, the sweep), so two budgets can be compared side by side; --workdir
keeps every arm's runs (Tune results, the sweep's MLflow store) instead of a temporary folder.
The header also prints the budget's rungs, what synchronous successive halving would cost at
that budget, and the floor no pruning schedule goes under (`successive_halving_cost`): a ratio
goal below that floor cannot be met by pruning alone.

Wall-time ratios are side by side in one run on a shared machine: read them as rough.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
import yaml

from bench.epochs import TrialSpec, trial_epochs
from orchestrator.registry import default_space_path, load_task, task_reference
from orchestrator.spaces import OptunaSpace, SearchSpaceSpec, load_spec

ARMS = ("random", "asha", "hyperband", "sha", "orchestrate")
LABELS = {
    "random": "full-budget random search (Ray, FIFO)",
    "asha": "plain Ray Tune ASHA + OptunaSearch",
    "hyperband": "Optuna alone + HyperbandPruner",
    "sha": "Optuna alone + SuccessiveHalvingPruner",
    "orchestrate": "orchestrate sweep (ASHA + guards + guard-aware TPE)",
}
BROKEN_SPACE = "bench.tasks.broken_space:task"
REPO = Path(__file__).resolve().parent.parent


@dataclass
class TrialRecord:
    """One trial as an arm ran it: its config and each epoch's result, in sampling order."""

    config: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ArmRun:
    arm: str
    trials: list[TrialRecord]
    wall_s: float


@dataclass(frozen=True)
class Bench:
    """What every arm of one seed shares."""

    reference: str
    spec: SearchSpaceSpec
    space_path: Path
    data_dir: Path
    trials: int
    max_epochs: int
    concurrency: int
    seed: int
    workdir: Path

    @property
    def trial_spec(self) -> TrialSpec:
        return TrialSpec(self.reference, str(self.data_dir), self.max_epochs, self.spec.metric,
                         self.spec.mode, self.spec.health)

    @property
    def grace_period(self) -> int:
        return min(self.spec.budget.grace_period, self.max_epochs)


# ---- the arms ---------------------------------------------------------------------------

def _tune_arm(bench: Bench, arm: str) -> ArmRun:
    """A plain Ray Tune experiment: random + FIFO, or stock OptunaSearch + ASHA."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    spec, trial_spec = bench.spec, bench.trial_spec

    def trainable(config: dict[str, Any]) -> None:
        for result in trial_epochs(config, trial_spec):
            tune.report(_reportable(result))

    if arm == "random":
        sampler = optuna.samplers.RandomSampler(seed=bench.seed)
        scheduler = FIFOScheduler()
    else:
        sampler = optuna.samplers.TPESampler(seed=bench.seed, multivariate=True, constant_liar=True,
                                             n_startup_trials=min(10, max(2, bench.trials // 2)))
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=bench.max_epochs,
                                  grace_period=bench.grace_period,
                                  reduction_factor=spec.budget.reduction_factor)
    searcher = OptunaSearch(space=OptunaSpace(spec), metric=spec.metric, mode=spec.mode,
                            sampler=sampler)
    start = time.perf_counter()
    # address="local": a Ray of its own, never another process's cluster on this machine
    ray.init(address="local", num_cpus=bench.concurrency, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode,
                                        num_samples=bench.trials, search_alg=searcher,
                                        scheduler=scheduler,
                                        max_concurrent_trials=bench.concurrency),
            run_config=tune.RunConfig(name=arm, storage_path=str(bench.workdir / "ray"),
                                      verbose=0),
        )
        tuner.fit()
    finally:
        ray.shutdown()
    wall = time.perf_counter() - start
    return ArmRun(arm, read_tune_experiment(bench.workdir / "ray" / arm), wall)


def _optuna_arm(bench: Bench, arm: str) -> ArmRun:
    """Optuna alone: TPE and one of its pruners, `concurrency` trials at a time in threads."""
    import torch

    torch.set_num_threads(1)  # one core per trial, as Ray gives each trial
    spec, trial_spec = bench.spec, bench.trial_spec
    rate = spec.budget.reduction_factor
    pruner = (optuna.pruners.HyperbandPruner(min_resource=bench.grace_period,
                                             max_resource=bench.max_epochs, reduction_factor=rate)
              if arm == "hyperband" else
              optuna.pruners.SuccessiveHalvingPruner(min_resource=bench.grace_period,
                                                     reduction_factor=rate))
    sampler = optuna.samplers.TPESampler(seed=bench.seed, multivariate=True, constant_liar=True,
                                         n_startup_trials=min(10, max(2, bench.trials // 2)))
    study = optuna.create_study(direction="maximize" if spec.mode == "max" else "minimize",
                                sampler=sampler, pruner=pruner)
    space = OptunaSpace(spec)
    records: dict[int, TrialRecord] = {}
    lock = threading.Lock()

    def objective(trial: optuna.Trial) -> float:
        fixed = space(trial)
        record = TrialRecord({**trial.params, **fixed})
        with lock:
            records[trial.number] = record
        values = []
        for result in trial_epochs(record.config, trial_spec):
            record.results.append(result)
            value = float(result.get(spec.metric, math.nan))
            values.append(value)
            trial.report(value, result["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return math.nan  # Optuna records it FAIL
        return max(finite) if spec.mode == "max" else min(finite)

    start = time.perf_counter()
    study.optimize(objective, n_trials=bench.trials, n_jobs=bench.concurrency,
                   catch=(Exception,))
    wall = time.perf_counter() - start
    return ArmRun(arm, [records[n] for n in sorted(records)], wall)


def _orchestrate_arm(bench: Bench) -> ArmRun:
    """`orchestrate sweep`, as a user runs it, in its own process with its own Ray."""
    workdir = bench.workdir / "orchestrate"
    workdir.mkdir(parents=True, exist_ok=True)
    executable = shutil.which("orchestrate") or str(Path(sys.executable).parent / "orchestrate")
    command = [executable, "sweep", "--task", bench.reference, "--space", str(bench.space_path),
               "--data-dir", str(bench.data_dir), "--trials", str(bench.trials),
               "--max-epochs", str(bench.max_epochs), "--seed", str(bench.seed),
               "--concurrency", str(bench.concurrency), "--name", "bench",
               "--storage", str(workdir / "ray_results"),
               "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: no trial finished well, still a sweep that ran
        raise SystemExit(f"error: orchestrate sweep exited {done.returncode}:\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    task_name = load_task(bench.reference).name
    return ArmRun("orchestrate", read_tune_experiment(workdir / "ray_results" / "bench" / task_name),
                  wall)


def _reportable(result: dict[str, Any]) -> dict[str, Any]:
    """A result Tune accepts: numbers and strings, the guards' verdict kept for the reader."""
    return {key: value for key, value in result.items()
            if isinstance(value, (int, float, str, bool))}


def read_tune_experiment(path: Path) -> list[TrialRecord]:
    """Every trial of a Tune experiment directory, from its result.json, in sampling order:
    the order trials started (Tune asks the searcher for a config when a slot frees and starts
    that trial at once; the sweep's trial ids are random, so they cannot order them)."""
    trials = []
    for result_file in path.glob("*/result.json"):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if not lines:
            continue
        record = TrialRecord(lines[0]["config"], lines)
        trials.append((lines[0]["timestamp"] - lines[0]["time_total_s"], record))
    return [record for _, record in sorted(trials, key=lambda item: item[0])]


# ---- the figures ------------------------------------------------------------------------

def broken_predicate(reference: str) -> Callable[[TrialRecord], bool]:
    """Whether a trial is broken: the task's own `in_broken_region(config)` when it has one,
    else a failure verdict from the guards at any epoch it ran."""
    module = importlib.import_module(reference.partition(":")[0])
    in_region = getattr(module, "in_broken_region", None)
    if in_region is not None:
        return lambda trial: bool(in_region(trial.config))
    return lambda trial: _first_failure(trial) is not None


def _first_failure(trial: TrialRecord) -> int | None:
    for index, result in enumerate(trial.results):
        if result.get("health/guard") and result.get("health/failure", True):
            return index
    return None


def _best(trial: TrialRecord, metric: str, mode: str) -> float | None:
    values = [float(r[metric]) for r in trial.results
              if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def figures(run: ArmRun, metric: str, mode: str, broken: Callable[[TrialRecord], bool]
            ) -> dict[str, float]:
    """One arm's figures for one seed (module docstring)."""
    bests = [b for b in (_best(t, metric, mode) for t in run.trials) if b is not None]
    broken_trials = [t for t in run.trials if broken(t)]
    lags = [len(t.results) - 1 - first for t in broken_trials
            if (first := _first_failure(t)) is not None]
    half = len(run.trials) // 2
    first_half, second_half = run.trials[:half], run.trials[half:]
    return {
        "trials": len(run.trials),
        "trial_epochs": sum(len(t.results) for t in run.trials),
        "best": (max(bests) if mode == "max" else min(bests)) if bests else math.nan,
        "broken_epochs": sum(len(t.results) for t in broken_trials),
        "reports_to_stop": statistics.mean(lags) if lags else math.nan,
        "wall_s": run.wall_s,
        "broken_first": sum(map(broken, first_half)) / max(1, len(first_half)),
        "broken_second": sum(map(broken, second_half)) / max(1, len(second_half)),
    }


def add_relative(per_arm: dict[str, dict[str, float]], mode: str) -> None:
    """Gap to the best of all arms (%) and wall time over the full-budget arm's, in place."""
    bests = [f["best"] for f in per_arm.values() if math.isfinite(f["best"])]
    top = (max(bests) if mode == "max" else min(bests)) if bests else math.nan
    base = per_arm.get("random", {}).get("wall_s")
    base_epochs = per_arm.get("random", {}).get("trial_epochs")
    for f in per_arm.values():
        f["gap_pct"] = abs(top - f["best"]) / abs(top) * 100 if top else math.nan
        f["wall_ratio"] = f["wall_s"] / base if base else math.nan
        f["epoch_ratio"] = f["trial_epochs"] / base_epochs if base_epochs else math.nan


def learning_curve_ranks(run: ArmRun, metric: str, mode: str) -> list[tuple[int, float, float]]:
    """How well epoch k ranks a full-budget arm's configs by their final result.

    For each epoch k: Spearman's rank correlation between the metric at epoch k and the
    trial's best over its whole budget (a non-finite value ranks last), and the share of the
    other trials ahead of the eventual winner at epoch k (ASHA with reduction factor r keeps
    the winner at a rung while this share stays under 1 - 1/r). Returns (k, rho, share).
    """
    sign = 1.0 if mode == "max" else -1.0

    def score(value: Any) -> float:
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        return sign * float(value) if ok else -math.inf

    trials = [t for t in run.trials if t.results]
    finals = [max((score(r.get(metric)) for r in t.results), default=-math.inf) for t in trials]
    winner = max(range(len(trials)), key=lambda i: finals[i]) if trials else None
    rows = []
    for k in range(1, max((len(t.results) for t in trials), default=0) + 1):
        at_k = [score(t.results[k - 1].get(metric)) if len(t.results) >= k else -math.inf
                for t in trials]
        ahead = sum(v > at_k[winner] for i, v in enumerate(at_k) if i != winner)
        rows.append((k, _spearman(at_k, finals), ahead / max(1, len(trials) - 1)))
    return rows


def _spearman(xs: list[float], ys: list[float]) -> float:
    import numpy as np

    def ranks(values: list[float]) -> np.ndarray:
        array = np.array([v if math.isfinite(v) else -1e300 for v in values])
        order = array.argsort(kind="stable")
        ranked = np.empty(len(array))
        ranked[order] = np.arange(len(array))
        for value in np.unique(array):  # ties share their mean rank
            ranked[array == value] = ranked[array == value].mean()
        return ranked

    if len(xs) < 3:
        return math.nan
    rx, ry = ranks(xs), ranks(ys)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def rungs(max_epochs: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The epochs where Ray's ASHA (one bracket) judges a trial, ascending: grace * rf^k
    below max_epochs, each at the first report that reaches it."""
    count = int(math.log(max_epochs / grace_period) / math.log(reduction_factor) + 1)
    return sorted({math.ceil(grace_period * reduction_factor ** k) for k in range(count)})


def successive_halving_cost(trials: int, max_epochs: int, grace_period: int,
                            reduction_factor: float) -> tuple[int, int]:
    """Trial-epochs of (synchronous successive halving at ASHA's rungs, the floor of any
    pruning schedule) for `trials` trials of `max_epochs` epochs.

    Synchronous halving keeps the top 1/rf (at least one) at each rung and runs the survivors
    of the last rung to `max_epochs`; asynchronous ASHA costs more, as it promotes the first
    trials to reach a rung before it has seen the others. The floor trains every trial to the
    first rung and a single one on to the end: no schedule that judges trials at their first
    rung and trains a winner to the budget costs less.
    """
    cost, survivors, reached = 0, trials, 0
    for rung in rungs(max_epochs, grace_period, reduction_factor) + [max_epochs]:
        cost += survivors * (rung - reached)
        reached = rung
        survivors = max(1, int(survivors // reduction_factor))
    return cost, trials * grace_period + max_epochs - grace_period


COLUMNS = [("trial_epochs", "trial-epochs", "{:.0f}"), ("epoch_ratio", "x full budget", "{:.2f}"),
           ("best", "best", "{:.3f}"), ("gap_pct", "gap to best arm %", "{:.1f}"),
           ("broken_epochs", "epochs on broken trials", "{:.0f}"),
           ("reports_to_stop", "reports from failure visible to stop", "{:.1f}"),
           ("wall_ratio", "wall x full budget", "{:.2f}"),
           ("broken_first", "broken share 1st half", "{:.2f}"),
           ("broken_second", "2nd half", "{:.2f}")]


def cell(values: list[float], fmt: str) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    mean = fmt.format(statistics.mean(finite))
    if len(finite) == 1:
        return mean
    return f"{mean} ({fmt.format(min(finite))}-{fmt.format(max(finite))})"


def table(per_seed: list[dict[str, dict[str, float]]], arms: list[str]) -> str:
    lines = ["| arm | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for arm in arms:
        cells = [cell([seed[arm][key] for seed in per_seed if arm in seed], fmt)
                 for key, _, fmt in COLUMNS]
        lines.append(f"| {LABELS[arm]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- the run ----------------------------------------------------------------------------

def prepare_data(reference: str, data_dir: Path | None, workdir: Path) -> Path:
    """The dataset every arm reads: --data-dir, else the task's demo data written once."""
    if data_dir is not None:
        return data_dir
    target = workdir / "data"
    load_task(reference).make_demo_data(target, seed=0)
    return target


def run_seed(bench: Bench, arms: list[str]) -> dict[str, dict[str, float]]:
    runs = {}
    for arm in arms:
        print(f"  seed {bench.seed}: {arm} ...", file=sys.stderr, flush=True)
        if arm in ("random", "asha"):
            runs[arm] = _tune_arm(bench, arm)
        elif arm in ("hyperband", "sha"):
            runs[arm] = _optuna_arm(bench, arm)
        else:
            runs[arm] = _orchestrate_arm(bench)
    broken = broken_predicate(bench.reference)
    per_arm = {arm: figures(run, bench.spec.metric, bench.spec.mode, broken)
               for arm, run in runs.items()}
    add_relative(per_arm, bench.spec.mode)
    if "random" in runs:
        per_arm["random"]["curve"] = learning_curve_ranks(runs["random"], bench.spec.metric,
                                                          bench.spec.mode)
    return per_arm


def with_budget(space_path: Path, grace_period: int | None, reduction_factor: float | None,
                workdir: Path) -> Path:
    """The space at `space_path` with its budget's grace period and reduction factor replaced
    where given, written under `workdir` (validated as the sweep will read it); `space_path`
    itself when nothing is replaced."""
    if grace_period is None and reduction_factor is None:
        return space_path
    raw = yaml.safe_load(Path(space_path).read_text())
    if grace_period is not None:
        raw["budget"]["grace_period"] = grace_period
    if reduction_factor is not None:
        raw["budget"]["reduction_factor"] = reduction_factor
    target = workdir / f"budget-{Path(space_path).name}"
    target.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_spec(target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default=BROKEN_SPACE,
                        help="built-in task name or package.module:object [broken_space bench task]")
    parser.add_argument("--space", type=Path, help="search-space YAML [the task's default]")
    parser.add_argument("--data-dir", type=Path, help="dataset [the task's demo data]")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--max-epochs", type=int, help="epoch budget [the space's]")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, each a full run")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start the seeds here (--first-seed 1 --seeds 2: seeds 1 and 2)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--grace-period", type=int,
                        help="first rung, in epochs, for every pruning arm [the space's]")
    parser.add_argument("--reduction-factor", type=float,
                        help="rung reduction factor for every pruning arm [the space's]")
    parser.add_argument("--workdir", type=Path,
                        help="keep the runs in this (new or empty) folder [a temporary one]")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("ray").setLevel(logging.ERROR)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    reference = task_reference(args.task)
    space_path = args.space or (REPO / "bench" / "tasks" / "broken_space.yaml"
                                if reference == BROKEN_SPACE else default_space_path(load_task(reference)))
    per_seed = []
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workspace = (nullcontext(str(args.workdir.resolve())) if args.workdir is not None
                 else tempfile.TemporaryDirectory(prefix="bench-compare-"))
    with workspace as tmp:
        space_path = with_budget(Path(space_path), args.grace_period, args.reduction_factor,
                                 Path(tmp))
        spec = load_spec(space_path)
        max_epochs = args.max_epochs or spec.budget.max_epochs
        data_dir = prepare_data(reference, args.data_dir, Path(tmp))
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            workdir = Path(tmp) / f"seed{seed}"
            bench = Bench(reference, spec, Path(space_path).resolve(), data_dir.resolve(),
                          args.trials, max_epochs, args.concurrency, seed, workdir)
            per_seed.append(run_seed(bench, args.arms))
    seeds = f"{args.first_seed}-{args.first_seed + args.seeds - 1}"
    grace = min(spec.budget.grace_period, max_epochs)
    print(f"task {reference}, {args.trials} trials x {max_epochs} epochs, concurrency "
          f"{args.concurrency}, seeds {seeds} (mean, min-max over seeds); pruning budget: "
          f"grace period {grace}, reduction factor {spec.budget.reduction_factor:g}")
    halving, floor = successive_halving_cost(args.trials, max_epochs, grace,
                                             spec.budget.reduction_factor)
    full = args.trials * max_epochs
    print(f"rungs at epochs {rungs(max_epochs, grace, spec.budget.reduction_factor)}; synchronous "
          f"successive halving would cost {halving} trial-epochs ({halving / full:.2f}x full "
          f"budget); no schedule that trains every trial {grace} epoch(s) and one to the end "
          f"costs less than {floor} ({floor / full:.2f}x)\n")
    print(table(per_seed, args.arms))
    curves = [seed["random"]["curve"] for seed in per_seed if "curve" in seed.get("random", {})]
    if curves:
        print("\nLearning curves of the full-budget arm: how epoch k ranks configs by their final"
              "\nresult (Spearman rho; share of trials ahead of the eventual winner at epoch k)\n")
        print("| epoch k | " + " | ".join(str(k) for k, _, _ in curves[0]) + " |")
        print("|---" * (len(curves[0]) + 1) + "|")
        for index, title, fmt in ((1, "rank correlation with final", "{:.2f}"),
                                  (2, "share ahead of the winner", "{:.2f}")):
            cells = [cell([curve[k][index] for curve in curves if k < len(curve)], fmt)
                     for k in range(len(curves[0]))]
            print(f"| {title} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(per_seed, indent=2))


if __name__ == "__main__":
    main()
