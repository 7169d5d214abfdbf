"""embedding_collapse: one modality's embeddings collapsed to one point or to zero vectors, named
worst first."""

import pytest

from orchestrator.health import HealthConfig, guard_coverage
from tests.health_histories import first_verdict, healthy_retrieval_history


def collapsed(report, modality, **statistics):
    """Set a modality's statistics; its inputs then tell nothing apart (shuffling them costs
    the metric nothing), as in a real collapse."""
    report.update({f"probe/{modality}/{name}": value for name, value in statistics.items()})
    report[f"probe/{modality}_shuffled/mean_r1"] = report["val/mean_r1"]


def test_offdiagonal_cosine_near_one_is_a_collapse_naming_the_modality():
    history = healthy_retrieval_history(5)
    for report in history:
        collapsed(report, "text", offdiag_cosine=0.99)  # collapsed from init and stays so
    verdict = first_verdict(history)
    assert verdict.guard == "embedding_collapse"
    assert verdict.epoch == 2
    assert verdict.evidence == {"probe/text/offdiag_cosine": 0.99, "max_offdiag_cosine": 0.95}
    assert verdict.reason.startswith("the text embeddings collapsed at epoch 2")


def test_dimension_spread_far_under_one_over_sqrt_d_is_a_collapse():
    history = healthy_retrieval_history(5)
    for report in history[2:]:
        collapsed(report, "image", dim_std=0.001)  # healthy is 1/sqrt(256) = 0.0625
    verdict = first_verdict(history)
    assert verdict.guard == "embedding_collapse"
    assert verdict.epoch == 4
    assert verdict.evidence["probe/image/dim_std"] == 0.001
    assert verdict.evidence["healthy_dim_std"] == pytest.approx(1 / 16)
    assert verdict.evidence["min_dim_std"] == pytest.approx(0.1 / 16)
    assert "image embeddings collapsed" in verdict.reason


def test_zero_vector_embeddings_are_a_collapse_though_their_cosine_looks_healthy():
    # a dead ReLU before F.normalize: every text embedding is the zero vector; its cosine with
    # anything is 0, which alone reads as perfectly spread
    history = healthy_retrieval_history(4)
    for report in history[1:]:
        report.update({"probe/text/offdiag_cosine": 0.0, "probe/text/dim_std": 0.0,
                       "probe/text/zero_fraction": 1.0})
    verdict = first_verdict(history)
    assert (verdict.guard, verdict.epoch) == ("embedding_collapse", 3)
    assert verdict.evidence["probe/text/zero_fraction"] == 1.0
    assert verdict.reason.startswith("the text embeddings collapsed at epoch 3: 100% of them are zero vectors")
    assert "ReLU" in verdict.reason


def test_zero_vectors_are_seen_without_a_zero_fraction_probe_and_zero_spread_is_not_lifting():
    # 0 spread followed by 0 spread is no recovery (a check of 0 >= 0 x 1.05 once said it was)
    history = healthy_retrieval_history(4)
    for report in history:
        del report["probe/image/zero_fraction"]
    for report in history[1:]:
        collapsed(report, "image", offdiag_cosine=0.0, dim_std=0.0)
    verdict = first_verdict(history)
    assert (verdict.guard, verdict.epoch) == ("embedding_collapse", 3)
    assert "image embeddings collapsed at epoch 3: per-dimension std 0 and mean cosine 0: every " \
           "embedding is the zero vector" in verdict.reason


def test_a_partial_share_of_zero_vectors_under_the_threshold_is_not_a_collapse():
    history = healthy_retrieval_history(4)
    for report in history:
        report["probe/image/zero_fraction"] = 0.2
    assert first_verdict(history) is None


def test_the_worst_modality_is_named_first_not_the_first_in_the_report():
    # a text tower returning a constant (cosine exactly 1); the image embeddings, first in the
    # report, also sit over the threshold, but less so
    history = healthy_retrieval_history(4)
    for report in history:
        collapsed(report, "image", offdiag_cosine=0.97)
        collapsed(report, "text", offdiag_cosine=1.0, dim_std=0.0)
    verdict = first_verdict(history)
    assert verdict.guard == "embedding_collapse" and verdict.epoch == 2
    assert verdict.reason.startswith("the text embeddings collapsed at epoch 2")
    assert "the image embeddings too (mean off-diagonal cosine 0.97 >= 0.95)" in verdict.reason
    assert verdict.evidence["probe/image/offdiag_cosine"] == 0.97


def test_equally_collapsed_modalities_name_the_one_collapsed_longer_first():
    history = healthy_retrieval_history(4)
    for report in history:
        collapsed(report, "text", offdiag_cosine=1.0)
    for report in history[1:]:
        collapsed(report, "image", offdiag_cosine=1.0)
    history[0]["probe/image/offdiag_cosine"] = 0.5
    verdict = first_verdict(history)
    assert verdict.epoch == 2 and verdict.reason.startswith("the text embeddings")


def test_a_transient_collapse_at_the_first_epoch_that_recovers_is_fine():
    history = healthy_retrieval_history(5)
    history[0]["probe/image/offdiag_cosine"] = 0.98
    assert first_verdict(history) is None


def test_a_single_collapsed_report_suffices_with_consecutive_reports_1():
    history = healthy_retrieval_history(3)
    collapsed(history[0], "image", offdiag_cosine=0.98)
    config = HealthConfig(embedding_collapse={"consecutive_reports": 1})
    verdict = first_verdict(history, config=config)
    assert (verdict.guard, verdict.epoch) == ("embedding_collapse", 1)
    assert "in a row" not in verdict.reason


def test_collapse_that_is_lifting_is_left_alone_and_one_that_stays_is_stopped():
    # a from-scratch model: near-collinear embeddings at first, spreading out (seen in a real
    # demo trial: image cosine 0.996 -> 0.985 -> 0.886 while mean R@1 rose 0.019 -> 0.102)
    lifting = healthy_retrieval_history(3)
    for report, cosine in zip(lifting, (0.996, 0.985, 0.886)):
        collapsed(report, "image", offdiag_cosine=cosine)
    assert first_verdict(lifting) is None
    stuck = healthy_retrieval_history(3)
    for report in stuck:
        collapsed(report, "text", offdiag_cosine=1.0)
    verdict = first_verdict(stuck)
    assert verdict.guard == "embedding_collapse" and verdict.epoch == 2 and "text" in verdict.reason


def test_nearly_collinear_embeddings_that_still_tell_inputs_apart_are_left_alone():
    # a real demo trial (retrieval, seed 1): a from-scratch text encoder at cosine 0.985 whose
    # captions already lift R@1 to 4.6 x chance; shuffling the captions drops it back
    history = [
        {"training_iteration": 1, "val/mean_r1": 0.013, "val/chance/mean_r1": 0.01,
         "probe/text/offdiag_cosine": 0.9873, "probe/text_shuffled/mean_r1": 0.007},
        {"training_iteration": 2, "val/mean_r1": 0.046, "val/chance/mean_r1": 0.01,
         "probe/text/offdiag_cosine": 0.9848, "probe/text_shuffled/mean_r1": 0.007},
    ]
    assert first_verdict(history) is None
    history[-1]["probe/text_shuffled/mean_r1"] = 0.04  # the captions tell almost nothing apart
    assert first_verdict(history).guard == "embedding_collapse"
    assert first_verdict(history[:1] + [dict(history[1], **{"probe/text_shuffled/mean_r1": 0.007})],
                         config=HealthConfig(embedding_collapse={"exempt_informative": False})
                         ).guard == "embedding_collapse"


def test_coverage_lists_the_probed_modalities_and_what_is_missing():
    report = healthy_retrieval_history(1)[0]
    del report["probe/text/zero_fraction"]
    coverage = guard_coverage(report, metric="val/mean_r1", mode="max", value_bounds={},
                              config=HealthConfig())
    collapse = next(item for item in coverage if item.guard == "embedding_collapse")
    assert collapse.active and collapse.watches == "image, text embeddings"
    assert any("probe/text/zero_fraction" in gap for gap in collapse.gaps)
    none = guard_coverage({"val/mean_r1": 0.2}, metric="val/mean_r1", mode="max",
                          value_bounds={}, config=HealthConfig())
    assert not next(item for item in none if item.guard == "embedding_collapse").active
