"""The figures tasks draw for their trials: what each one plots, and that it renders as PNG."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from tasks.common.classification_metrics import auroc
from tasks.common.figures import (
    RetrievedItem, confused_class_pairs, health_probes, png_bytes, recall_at_k_curves,
    retrieval_examples, roc_pr_curves, similarity_histograms, top_retrieved,
)
from tasks.common.retrieval_metrics import retrieval_metrics


def decoded(figure) -> Image.Image:
    data = png_bytes(figure)
    assert data.startswith(b"\x89PNG")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_roc_and_pr_curves_show_the_tasks_own_auroc_and_the_chance_lines():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2])
    labels = torch.tensor([1, 1, 0, 1, 0, 0, 1, 0])
    figure = roc_pr_curves(scores, labels, title="val")
    roc, pr = figure.axes
    fpr, tpr = roc.lines[0].get_data()
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(scores, labels))
    legend = [text.get_text() for text in roc.get_legend().get_texts()]
    assert legend[0] == f"AUROC {auroc(scores, labels):.3f}" and legend[1] == "chance 0.5"
    assert "chance 0.50" in [t.get_text() for t in pr.get_legend().get_texts()]  # 4 of 8 positive
    assert decoded(figure).size[0] > 300


def test_roc_of_one_class_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        roc_pr_curves([0.1, 0.2], [1, 1])


def test_recall_at_k_matches_the_retrieval_metrics_in_both_directions():
    generator = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(20, 8, generator=generator), dim=1)
    captions = torch.nn.functional.normalize(
        images.repeat_interleave(5, 0) + 0.8 * torch.randn(100, 8, generator=generator), dim=1)
    similarity = images @ captions.T
    figure = recall_at_k_curves(similarity, max_k=10)
    axes = figure.axes[0]
    i2t, t2i, chance = (line.get_ydata() for line in axes.lines)
    metrics = retrieval_metrics(similarity)
    assert i2t[0] == pytest.approx(metrics["i2t_r1"]) and t2i[0] == pytest.approx(metrics["t2i_r1"])
    assert i2t[4] == pytest.approx(metrics["i2t_r5"]) and t2i[9] == pytest.approx(metrics["t2i_r10"])
    assert np.all(np.diff(i2t) >= 0) and np.all(np.diff(t2i) >= 0)
    assert chance[0] == pytest.approx(1 / 20)
    decoded(figure)


def test_retrieval_grid_frames_correct_items_green_and_wrong_ones_red():
    similarity = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8]])
    assert top_retrieved(similarity, [0, 1], k=2) == [[0, 2], [2, 1]]
    thumbnail = np.zeros((8, 8, 3), dtype=np.uint8)
    rows = [(RetrievedItem(image=thumbnail, text="query 0"),
             [RetrievedItem(text="a red circle", correct=True), RetrievedItem(text="a blue square", correct=False)]),
            (RetrievedItem(image=torch.zeros(3, 8, 8)),
             [RetrievedItem(image=thumbnail, text="b", correct=False)])]
    figure = retrieval_examples(rows)
    from matplotlib.colors import to_hex

    frames = [(round(p.get_x()), round(p.get_y()), to_hex(p.get_edgecolor())) for p in figure.axes[0].patches]
    # (column, row, colour): the queries black, a correct match green, a wrong one red; the
    # second row has one item, so no frame in its third column
    assert frames == [(0, 0, "#000000"), (1, 0, "#2ca02c"), (2, 0, "#d62728"),
                      (0, 1, "#000000"), (1, 1, "#d62728")]
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert "a red circle" in texts and "query 0" in texts
    decoded(figure)


def test_confused_pairs_lists_the_most_frequent_mistakes_first():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    predictions = [1, 1, 0, 2, 1, 0, 1, 1, 2]
    figure = confused_class_pairs(predictions, labels, ["sparrow", "finch", "wren"], top=2)
    axes = figure.axes[0]
    ticks = [label.get_text() for label in axes.get_yticklabels()]
    assert ticks == ["wren → finch", "sparrow → finch"]  # barh draws bottom-up: the top bar is last
    assert [bar.get_width() for bar in axes.patches] == [2, 2]
    assert "6 of 9 wrong" in axes.get_title()
    decoded(figure)


def test_similarity_histograms_of_a_collapsed_model_still_show_both_spikes():
    figure = similarity_histograms(np.ones(50), np.ones(500))
    axes = figure.axes[0]
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["non-matching (n=500, mean 1.000)", "matching (n=50, mean 1.000)"]
    heights = [patch.get_height() for patch in axes.patches]
    assert max(heights) > 0
    low, high = axes.get_xlim()
    assert low < 1.0 < high
    decoded(figure)


def test_similarity_histograms_separate_healthy_positives_from_negatives():
    figure = similarity_histograms([0.8, 0.7, 0.9], [0.1, -0.2, 0.0, 0.2])
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == [
        "non-matching (n=4, mean 0.025)", "matching (n=3, mean 0.800)"]


def test_health_probes_draw_one_panel_per_signal_with_the_healthy_reference():
    history = [
        {"epoch": epoch, "probe/image/offdiag_cosine": 0.5 - 0.1 * epoch,
         "probe/text/offdiag_cosine": 0.6, "probe/image/dim_std": 0.1, "probe/image/dim": 64,
         "probe/text_shuffled/mean_r1": 0.01, "val/mean_r1": 0.1 * epoch,
         "probe/positive_similarity": 0.6, "probe/negative_similarity": 0.1, "train/loss": 3.0}
        for epoch in (1, 2, 3)
    ]
    figure = health_probes(history)
    panels = {axes.get_title(): axes for axes in figure.axes if axes.get_title()}
    assert set(panels) == {"offdiag_cosine", "dim_std", "mean_r1", "whole model"}
    cosine = {line.get_label(): list(line.get_ydata()) for line in panels["offdiag_cosine"].lines}
    assert cosine["image"] == pytest.approx([0.4, 0.3, 0.2])
    shuffled = {line.get_label() for line in panels["mean_r1"].lines}
    assert shuffled == {"text_shuffled", "real inputs (val)"}
    assert any(line.get_ydata()[0] == pytest.approx(1 / 8) for line in panels["dim_std"].lines)
    decoded(figure)


def test_health_probes_without_probes_are_refused():
    with pytest.raises(ValueError, match="no numeric probe"):
        health_probes([{"train/loss": 1.0}])
