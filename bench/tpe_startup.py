"""How many random start-up trials the sweep's TPE should take, measured on a cheap synthetic
objective with a broken region, through the sweep's own searcher (orchestrator/searcher.py).

The objective mirrors bench/tasks/broken_space.py's space (learning rate, temperature, weight
decay, log-scaled, the same broken region): a trial in the region is stopped at its first
epoch by a failure guard (as non_finite stops a NaN trial), any other runs its budget and
scores a smooth function of its config peaking inside the healthy region. Trials run two at a
time (a 2-core machine's concurrency): two configs are asked before either is told.

For each sweep length, start-up count and TPE `gamma` (Optuna's default top tenth, or the
sweep's top quarter) it prints, over many seeds: the share of trials sampled in the broken
region in the sweep's first and second half, the mean best value, and the mean regret
(optimum minus best). The first row of each sweep length tells trials the way Ray Tune's stock
OptunaSearch does (a guard-stopped trial COMPLETE with NaN, refused and left RUNNING) with the
old start-up count min(10, trials / 2): the old sweep's searcher.

    python -m bench.tpe_startup [--seeds 40] [--trials 8 20] [--startup 2 4 10]
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import warnings
from pathlib import Path

import optuna
from ray.tune.search.optuna import OptunaSearch

from bench.tasks.broken_space import in_broken_region
from orchestrator.searcher import GuardAwareOptunaSearch, startup_trials, top_quarter
from orchestrator.spaces import OptunaSpace, load_spec

SPACE = Path(__file__).parent / "tasks" / "broken_space.yaml"
MAX_EPOCHS = 12
CONCURRENCY = 2
OPTIMUM = 0.87


def synthetic_value(config: dict) -> float:
    """A smooth score peaking at lr 3e-3, temperature 0.1, weight decay 1e-3 (OPTIMUM there)."""
    return (OPTIMUM - 0.04 * math.log10(config["learning_rate"] / 3e-3) ** 2
            - 0.02 * math.log10(config["temperature"] / 0.1) ** 2
            - 0.005 * math.log10(config["weight_decay"] / 1e-3) ** 2)


def final_result(config: dict) -> dict:
    """The last result Tune would hand the searcher for this config."""
    if in_broken_region(config):
        return {"training_iteration": 1, "val/mean_r1": float("nan"),
                "health/guard": "non_finite", "health/failure": True}
    return {"training_iteration": MAX_EPOCHS, "val/mean_r1": synthetic_value(config)}


def make(kind: str, seed: int, startup: int, gamma: str):
    """A searcher as the sweep builds it, with the given start-up count and TPE gamma."""
    spec = load_spec(SPACE)
    if kind == "stock":  # the old sweep: Ray's OptunaSearch, trials told as it tells them
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                             n_startup_trials=startup)
        return OptunaSearch(space=OptunaSpace(spec), metric=spec.metric, mode=spec.mode,
                            sampler=sampler)
    options = {"gamma": top_quarter} if gamma == "top quarter" else {}
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                         constant_liar=True, n_startup_trials=startup, **options)
    return GuardAwareOptunaSearch(OptunaSpace(spec), spec.metric, spec.mode, sampler, MAX_EPOCHS)


def sweep(searcher, trials: int) -> list[dict]:
    """Run `trials` synthetic trials, CONCURRENCY at a time; returns the configs in order."""
    configs: list[dict] = []
    while len(configs) < trials:
        batch = [f"t{len(configs) + i}" for i in range(min(CONCURRENCY, trials - len(configs)))]
        asked = [(trial_id, searcher.suggest(trial_id)) for trial_id in batch]
        for trial_id, config in asked:
            configs.append(config)
            searcher.on_trial_complete(trial_id, result=final_result(config))
    return configs


def summarise(runs: list[list[dict]]) -> dict[str, float]:
    def share(configs):
        return sum(map(in_broken_region, configs)) / len(configs)

    half = len(runs[0]) // 2
    bests = [max((synthetic_value(c) for c in configs if not in_broken_region(c)), default=0.0)
             for configs in runs]
    return {
        "first_half": statistics.mean(share(configs[:half]) for configs in runs),
        "second_half": statistics.mean(share(configs[half:]) for configs in runs),
        "best": statistics.mean(bests),
        "regret": statistics.mean(OPTIMUM - best for best in bests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--trials", type=int, nargs="+", default=[8, 20])
    parser.add_argument("--startup", type=int, nargs="+", default=[2, 4, 10])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    logging.getLogger("ray.tune.search.optuna.optuna_search").setLevel(logging.ERROR)
    print("| trials | searcher | start-up | TPE gamma | broken share, 1st half | 2nd half "
          "| best | regret |")
    print("|---|---|---|---|---|---|---|---|")
    for trials in args.trials:
        rows = [("stock OptunaSearch (old sweep)", "stock", min(10, max(2, trials // 2)),
                 "Optuna default")]
        for startup in sorted({*args.startup, startup_trials(trials)}):
            if startup < trials:
                rows += [("GuardAwareOptunaSearch", "guard_aware", startup, gamma)
                         for gamma in ("Optuna default", "top quarter")]
        for label, kind, startup, gamma in rows:
            runs = [sweep(make(kind, seed, startup, gamma), trials) for seed in range(args.seeds)]
            result = summarise(runs)
            sweep_default = (kind == "guard_aware" and gamma == "top quarter"
                             and startup == startup_trials(trials))
            print(f"| {trials} | {label}{' (the sweep)' if sweep_default else ''} | {startup} "
                  f"| {gamma} | {result['first_half']:.2f} | {result['second_half']:.2f} "
                  f"| {result['best']:.3f} | {result['regret']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
