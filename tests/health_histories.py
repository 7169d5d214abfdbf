"""Trial histories for the run-health guard tests: healthy runs to break, and the call the trial
loop makes after every report."""

from __future__ import annotations

import math

from orchestrator.health import HealthConfig, Verdict, check_health

INF = math.inf
RETRIEVAL_BOUNDS = {"train/loss": (0.0, INF), "val/*_r1": (0.0, 1.0), "val/*accuracy": (0.0, 1.0)}
LOSSES = [4.2, 3.1, 3.3, 2.4, 2.0, 2.1, 1.6, 1.4, 1.3, 1.1]  # decreasing, with noise
RECALLS = [0.02, 0.06, 0.11, 0.16, 0.22, 0.27, 0.31, 0.35, 0.38, 0.40]


def healthy_retrieval_history(epochs: int = 10) -> list[dict]:
    """A contrastive run that learns: loss 4.2 -> 1.1, R@1 0.02 -> 0.4 at chance 0.01."""
    history = []
    for index in range(epochs):
        recall = RECALLS[index]
        history.append(
            {
                "training_iteration": index + 1,
                "train/loss": LOSSES[index],
                "train/hard_negative_loss": LOSSES[index] / 2,
                "val/mean_r1": recall,
                "val/chance/mean_r1": 0.01,
                "probe/image/offdiag_cosine": 0.35 - 0.02 * index,
                "probe/image/dim_std": 0.8 / math.sqrt(256),
                "probe/image/dim": 256.0,
                "probe/image/zero_fraction": 0.0,
                "probe/text/offdiag_cosine": 0.30 - 0.02 * index,
                "probe/text/dim_std": 0.7 / math.sqrt(256),
                "probe/text/dim": 256.0,
                "probe/text/zero_fraction": 0.0,
                "probe/image_shuffled/mean_r1": 0.011,
                "probe/text_shuffled/mean_r1": 0.009,
                "probe/positive_similarity": 0.2 + 0.05 * index,
                "probe/negative_similarity": 0.05,
            }
        )
    return history


def healthy_classification_history(epochs: int = 8) -> list[dict]:
    """A classifier that beats its 80% majority class and an AUROC well above 0.5."""
    accuracies = [0.78, 0.80, 0.84, 0.87, 0.89, 0.91, 0.92, 0.93]
    return [
        {
            "training_iteration": index + 1,
            "train/loss": 0.9 - 0.08 * index,
            "val/accuracy": accuracies[index],
            "val/majority_rate": 0.8,
            "val/auroc": 0.60 + 0.04 * index,
            "probe/image_shuffled/accuracy": 0.80,
        }
        for index in range(epochs)
    ]


def history_of(key_values: dict[str, list[float]], **constant) -> list[dict]:
    """One report per position of the lists: {"val/x": [a, b]} -> [{"val/x": a}, {"val/x": b}]."""
    length = len(next(iter(key_values.values())))
    return [
        {"training_iteration": index + 1, **constant,
         **{key: values[index] for key, values in key_values.items()}}
        for index in range(length)
    ]


def run(history, *, metric="val/mean_r1", mode="max", bounds=None, config=None, plausible_max=None):
    """check_health on the whole history, as the trial loop calls it after its latest report."""
    return check_health(
        history,
        metric=metric,
        mode=mode,
        value_bounds=RETRIEVAL_BOUNDS if bounds is None else bounds,
        config=config or HealthConfig(),
        plausible_max=plausible_max,
    )


def first_verdict(history, **kwargs) -> Verdict | None:
    """What the trial loop sees: check_health after each report, the first verdict stops it."""
    for end in range(1, len(history) + 1):
        verdict = run(history[:end], **kwargs)
        if verdict is not None:
            return verdict
    return None


def only(*guards: str, **settings) -> HealthConfig:
    """A HealthConfig with every guard but `guards` turned off (settings: extra fields per guard)."""
    fields = {name: {"enabled": name in guards} for name in HealthConfig.model_fields}
    for name, values in settings.items():
        fields[name].update(values)
    return HealthConfig.model_validate(fields)
