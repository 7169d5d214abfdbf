"""Does the unfreezing schedule matter? fANOVA importance over a random sweep, then the best
schedule against "everything trains from epoch 0" and "only the heads train", side by side.

1. Draws `--trials` configs from the task's default search space with Optuna's RandomSampler
   (an unbiased draw, which fANOVA needs) and runs each through the real trial loop for the
   whole budget (local Ray Tune, FIFO: no pruning; health guards on).
2. Optuna's fANOVA (`FanovaImportanceEvaluator`) over those trials: the share of the target
   metric's variance each parameter explains. A conditional parameter that a trial did not
   sample ran at its config default (unfreeze_start_epoch 0, unfreeze_layers_per_stage 1,
   unfreeze_stage_epochs 1, unfreeze_lr_scale 1.0), and is given that value, so every trial
   has every parameter.
3. The best trial that has a staged schedule (unfreeze_stages >= 1, its first stage inside the
   budget) is rerun with `--seeds` seeds as it is, with unfreeze_stages 0 (no schedule: every
   block trains from epoch 0 at the base learning rate) and with only the heads training
   (unfreeze_start_epoch beyond the budget), all other hyperparameters equal. Taking the best
   *staged* trial, not the best trial, makes the comparison exist in every draw (the overall
   best may have no schedule); rerunning removes the luck of the best draw.

    python -m bench.unfreezing_importance [--task retrieval] [--trials 32] [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.samplers import RandomSampler

from bench.sweep_runs import TrialRecord, run_trials
from orchestrator.spaces import CategoricalParam, FloatParam, SearchSpaceSpec

UNFREEZING = ("unfreeze_stages", "unfreeze_start_epoch", "unfreeze_layers_per_stage",
              "unfreeze_stage_epochs", "unfreeze_lr_scale")


def distributions(spec: SearchSpaceSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The Optuna distribution of every searched parameter, as the sweep samples it."""
    found = {}
    for name, param in spec.parameters.items():
        if isinstance(param, FloatParam):
            found[name] = FloatDistribution(param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, CategoricalParam):
            found[name] = CategoricalDistribution(param.choices)
        else:
            found[name] = IntDistribution(param.low, param.high, log=param.log, step=param.step or 1)
    return found


def importances(spec: SearchSpaceSpec, records: list[TrialRecord], seed: int) -> dict[str, float]:
    """fANOVA importance of each searched parameter over the finished trials (values as run)."""
    space = distributions(spec)
    study = optuna.create_study(direction="maximize" if spec.mode == "max" else "minimize")
    for record in records:
        if record.best != record.best:  # no finite metric: nothing to explain
            continue
        study.add_trial(optuna.trial.create_trial(
            params={name: record.values[name] for name in space},
            distributions=space, value=record.best))
    return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))


def has_staged_schedule(record: TrialRecord, max_epochs: int) -> bool:
    """Whether the trial froze blocks and freed them in stages, the first stage inside the budget."""
    return (record.values["unfreeze_stages"] >= 1
            and record.values["unfreeze_start_epoch"] < max_epochs)


def schedule_variants(best: TrialRecord, max_epochs: int) -> dict[str, dict]:
    """The staged config, the same with no schedule, and the same with only the heads training."""
    described = ", ".join(f"{name.removeprefix('unfreeze_')} {best.values[name]:.3g}" for name in UNFREEZING)
    best = best.config
    return {
        f"staged schedule ({described})": dict(best),
        "everything trains from epoch 0 (unfreeze_stages 0)": {
            **best, "unfreeze_stages": 0, "unfreeze_lr_scale": 1.0},
        f"only heads train (unfreeze_start_epoch {max_epochs})": {
            **best, "unfreeze_stages": 1, "unfreeze_start_epoch": max_epochs},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="retrieval")
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3, help="reruns of each schedule")
    parser.add_argument("--seed", type=int, default=0, help="of the random sampler and fANOVA")
    parser.add_argument("--data-root", type=Path,
                        default=Path(tempfile.gettempdir()) / "orchestrate-bench")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    started = time.perf_counter()
    spec, records = run_trials(args.task, args.data_root, trials=args.trials,
                               sampler=RandomSampler(seed=args.seed))
    finished = [record for record in records if record.best == record.best]
    print(f"\n{args.task}: {len(finished)} of {len(records)} random trials finished "
          f"({time.perf_counter() - started:.0f} s); {spec.metric} at the best epoch: "
          f"best {max(r.best for r in finished):.3f}, median "
          f"{statistics.median(r.best for r in finished):.3f}, worst {min(r.best for r in finished):.3f}")

    ranked = importances(spec, finished, args.seed)
    print(f"\nfANOVA importance of each parameter for {spec.metric} ({len(finished)} trials):")
    for name, value in ranked.items():
        print(f"  {name:28} {value:6.3f}{'   <- unfreezing' if name in UNFREEZING else ''}")
    print(f"  {'unfreezing parameters, sum':28} {sum(ranked.get(n, 0.0) for n in UNFREEZING):6.3f}")

    max_epochs = spec.budget.max_epochs
    score = lambda record: record.best if spec.mode == "max" else -record.best  # noqa: E731
    overall = max(finished, key=score)
    staged = [record for record in finished if has_staged_schedule(record, max_epochs)]
    if not staged:
        raise SystemExit(f"error: none of the {len(finished)} finished trials has a staged schedule "
                         "(unfreeze_stages >= 1); draw more with --trials or another --seed")
    best = max(staged, key=score)
    print(f"\nbest trial: {spec.metric} {overall.best:.3f}, unfreeze_stages "
          f"{overall.values['unfreeze_stages']}; best of the {len(staged)} trials with a staged "
          f"schedule: {best.best:.3f}")
    variants = schedule_variants(best, max_epochs)
    runs = [{**config, "seed": seed} for config in variants.values() for seed in range(args.seeds)]
    _, reruns = run_trials(args.task, args.data_root, configs=runs)
    print(f"\nThe best staged trial (its {spec.metric} {best.best:.3f}) rerun with seeds "
          f"0-{args.seeds - 1}, only the schedule changed:")
    width = max(len(label) for label in variants)
    print(f"  {'schedule':{width}} {'mean':>6} {'sd':>6}  per seed")
    for label, config in variants.items():
        values = [r.best for r in reruns
                  if {k: v for k, v in r.config.items() if k != "seed"} ==
                  {k: v for k, v in config.items() if k != "seed"}]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"  {label:{width}} {statistics.mean(values):6.3f} {spread:6.3f}  "
              + " ".join(f"{v:.3f}" for v in values))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
