"""plateau: the target metric stopped improving beyond its own noise (converged, not failed)."""

import pytest

from tests.health_histories import first_verdict, healthy_retrieval_history, history_of, only, run

PLATEAU = only("plateau")
PLATEAU_WITHOUT_NOISE = only("plateau", plateau={"noise_sigmas": 0})


def test_metric_stuck_at_a_ceiling_is_a_plateau_not_a_failure():
    history = healthy_retrieval_history(9)
    for report, recall in zip(history, [0.1, 0.2, 0.30, 0.37, 0.371, 0.369, 0.372, 0.37, 0.37]):
        report["val/mean_r1"] = recall
    verdict = first_verdict(history)
    assert verdict.guard == "plateau"
    assert verdict.is_failure is False
    assert verdict.epoch == 8  # epochs 5-8 gain 0.002 over the best 0.37 of epoch 4
    assert verdict.evidence["best_before"] == 0.37
    assert verdict.evidence["best_recent"] == 0.372
    assert verdict.evidence["gain"] == pytest.approx(0.002)
    assert verdict.to_result()["health/failure"] is False


def test_plateau_respects_mode_min():
    losses = [1.0, 0.8, 0.6, 0.5, 0.45, 0.41]
    assert run(history_of({"val/loss": losses}), metric="val/loss", mode="min", bounds={}) is None
    rising = history_of({"val/loss": [0.5 + 0.01 * i for i in range(5)]})
    verdict = run(rising, metric="val/loss", mode="min", bounds={})
    assert (verdict.guard, verdict.epoch, verdict.is_failure) == ("plateau", 5, False)


def test_a_small_val_set_wandering_at_its_ceiling_is_a_plateau_despite_new_maxima():
    # R@1 over 200 images (steps of 0.0025) reaches 0.25 by epoch 4, then wanders between 0.25
    # and 0.28, setting a new best by 0.0075 now and then: a fixed min_delta sees progress
    recalls = [0.05, 0.15, 0.22, 0.25, 0.2625, 0.2525, 0.27, 0.2575, 0.2775, 0.2625, 0.2675, 0.28]
    history = history_of({"val/mean_r1": recalls})
    verdict = first_verdict(history, config=PLATEAU)
    assert verdict.guard == "plateau" and verdict.epoch <= 10
    assert "within its epoch-to-epoch noise" in verdict.reason
    assert first_verdict(history[:verdict.epoch], config=PLATEAU_WITHOUT_NOISE) is None


def test_a_metric_still_rising_through_its_noise_is_not_a_plateau():
    recalls = [0.10, 0.16, 0.19, 0.24, 0.25, 0.29, 0.30, 0.34, 0.34, 0.38, 0.39, 0.42]
    assert first_verdict(history_of({"val/mean_r1": recalls}), config=PLATEAU) is None
    # a real demo trial (multiview, 56 val pairs) that stepped up at epoch 4
    aurocs = [0.8074, 0.8457, 0.7959, 0.9133, 0.9184, 0.9043, 0.912]
    assert first_verdict(history_of({"val/auroc": aurocs}), metric="val/auroc", config=PLATEAU) is None


def test_a_crash_is_not_a_plateau_but_left_to_the_failure_guards():
    recalls = [0.10, 0.16, 0.22, 0.27, 0.011, 0.011]
    history = history_of({"val/mean_r1": recalls}, **{"val/chance/mean_r1": 0.01})
    assert run(history[:5], config=PLATEAU) is None  # the crash itself: no plateau
    verdict = first_verdict(history)
    assert (verdict.guard, verdict.epoch) == ("chance_level", 6)


def test_a_gain_equal_to_min_delta_up_to_round_off_counts_and_reasons_never_contradict():
    # 0.35 - 0.34 is 0.009999999999999953 in floats
    config = only("plateau", plateau={"min_delta": 0.01, "noise_sigmas": 0, "patience": 1})
    assert run(history_of({"val/mean_r1": [0.34, 0.35]}), config=config) is None
    verdict = run(history_of({"val/mean_r1": [0.34, 0.34999999]}), config=config)
    assert "a gain of 0.00999999, < min_delta 0.01" in verdict.reason
