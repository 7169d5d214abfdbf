"""zh_matching's loss and similarity against direct loop computations on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tasks.common.contrastive import infonce_from_similarity
from tasks.zh_matching.config import ZhMatchingConfig
from tasks.zh_matching.loss import matching_loss, vse_hinge
from tasks.zh_matching.similarity import (
    global_similarity,
    scan_t2i_similarity,
    similarity_in_chunks,
)

# image i (row) vs caption j (column); pairs on the diagonal.
HAND_SIMILARITY = torch.tensor(
    [[0.9, 0.7, 0.1], [0.8, 0.5, 0.6], [0.2, 0.55, 0.4]], dtype=torch.float64
)


def vse_hinge_by_loop(similarity: list[list[float]], margin: float, max_violation: bool) -> float:
    """VSE++ written out: per anchor, the violations of its negatives, both directions."""
    size = len(similarity)
    per_direction = []
    for by_row in (True, False):
        anchor_terms = []
        for anchor in range(size):
            positive = similarity[anchor][anchor]
            negatives = [
                similarity[anchor][other] if by_row else similarity[other][anchor]
                for other in range(size)
                if other != anchor
            ]
            violations = [max(0.0, margin - positive + negative) for negative in negatives]
            anchor_terms.append(max(violations) if max_violation else sum(violations) / len(violations))
        per_direction.append(sum(anchor_terms) / size)
    return sum(per_direction) / 2


@pytest.mark.parametrize("max_violation", [True, False])
def test_vse_hinge_matches_the_loop_over_anchors_and_negatives(max_violation):
    expected = vse_hinge_by_loop(HAND_SIMILARITY.tolist(), 0.2, max_violation)
    assert vse_hinge(HAND_SIMILARITY, 0.2, max_violation).item() == pytest.approx(expected, rel=1e-12)


def test_vse_hinge_hand_value_with_hardest_negatives():
    # rows: relu(.2-.9+.7)=0, relu(.2-.5+.8)=.5, relu(.2-.4+.55)=.35 -> mean .85/3
    # columns: relu(.2-.9+.8)=.1, relu(.2-.5+.7)=.4, relu(.2-.4+.6)=.4 -> mean .9/3
    assert vse_hinge(HAND_SIMILARITY, 0.2, True).item() == pytest.approx((0.85 / 3 + 0.9 / 3) / 2)


def test_hinge_of_a_well_separated_batch_is_exactly_zero_never_negative():
    # The seed-report bug: a hinge without its relu rewards an easy batch with a negative loss.
    separated = torch.eye(4, dtype=torch.float64) * 0.9
    for max_violation in (True, False):
        assert vse_hinge(separated, 0.2, max_violation).item() == 0.0
    assert vse_hinge(-torch.ones(4, 4) + 2 * torch.eye(4), 0.2, True).item() == 0.0


def test_infonce_on_similarity_matches_cross_entropy_by_hand_and_stays_positive():
    temperature = 0.1
    logits = (HAND_SIMILARITY / temperature).tolist()

    def cross_entropy(row: list[float], target: int) -> float:
        return math.log(sum(math.exp(v) for v in row)) - row[target]

    rows = sum(cross_entropy(logits[i], i) for i in range(3)) / 3
    columns = sum(cross_entropy([logits[j][i] for j in range(3)], i) for i in range(3)) / 3
    assert infonce_from_similarity(HAND_SIMILARITY, temperature).item() == pytest.approx(
        (rows + columns) / 2, rel=1e-12
    )
    # The positive belongs in the denominator: even a perfect batch has InfoNCE > 0
    # (a version summing negatives only goes below 0 here).
    perfect = torch.eye(3, dtype=torch.float64) * 2 - 1
    value = infonce_from_similarity(perfect, 0.5).item()
    assert value > 0 and value == pytest.approx(math.log(1 + 2 * math.exp(-2 / 0.5)), rel=1e-9)


def test_matching_loss_adds_the_weighted_hard_negative_hinge_to_the_chosen_loss():
    hinge_config = ZhMatchingConfig(loss="vse_hinge", margin=0.2, hard_negative_ratio=1.0,
                                    hard_negative_weight=0.5, hard_negative_margin=0.3)
    terms = matching_loss(HAND_SIMILARITY, hinge_config)
    assert set(terms) == {"loss", "vse_hinge", "hard_negative_hinge"}
    all_negatives = vse_hinge_by_loop(HAND_SIMILARITY.tolist(), 0.3, False)
    assert terms["hard_negative_hinge"].item() == pytest.approx(all_negatives)
    assert terms["loss"].item() == pytest.approx(
        terms["vse_hinge"].item() + 0.5 * terms["hard_negative_hinge"].item()
    )
    infonce_terms = matching_loss(HAND_SIMILARITY, ZhMatchingConfig(loss="infonce", temperature=0.1))
    assert set(infonce_terms) == {"loss", "infonce", "hard_negative_hinge"}
    assert infonce_terms["hard_negative_hinge"].item() == 0.0
    expected = infonce_from_similarity(HAND_SIMILARITY, 0.1).item()
    assert infonce_terms["loss"].item() == pytest.approx(expected)


# --- SCAN text-to-image attention ---------------------------------------------------------------

def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


# 2 images x 2 regions, 2 captions x 2 words (caption 1 has one real word then padding), d = 3.
REGIONS = torch.tensor(
    [[unit(1, 0, 0), unit(0, 1, 0)], [unit(1, 1, 0), unit(0, 0.5, 1)]], dtype=torch.float64
)
WORDS = torch.tensor(
    [[unit(1, 0.2, 0), unit(0, 1, 1)], [unit(0.3, 0, 1), [0.0, 0.0, 0.0]]], dtype=torch.float64
)
MASK = torch.tensor([[True, True], [True, False]])


def scan_by_loop(attention_lambda: float, aggregation: str, lse_lambda: float) -> list[list[float]]:
    """SCAN t2i written out word by word, region by region."""
    regions, words = REGIONS.tolist(), WORDS.tolist()

    def dot(a, b):
        return sum(x * y for x, y in zip(a, b))

    scores = []
    for image in regions:
        row = []
        for caption, mask in zip(words, MASK.tolist()):
            relevances = []
            for word, real in zip(caption, mask):
                if not real:
                    continue
                weights = [math.exp(attention_lambda * dot(word, region)) for region in image]
                total = sum(weights)
                attended = [
                    sum(w / total * region[k] for w, region in zip(weights, image))
                    for k in range(3)
                ]
                relevances.append(dot(word, attended) / math.sqrt(dot(attended, attended)))
            if aggregation == "mean":
                row.append(sum(relevances) / len(relevances))
            else:
                mean_exp = sum(math.exp(lse_lambda * r) for r in relevances) / len(relevances)
                row.append(math.log(mean_exp) / lse_lambda)
        scores.append(row)
    return scores


@pytest.mark.parametrize("aggregation", ["mean", "logsumexp"])
def test_scan_t2i_matches_the_word_by_word_loop(aggregation):
    expected = torch.tensor(scan_by_loop(4.0, aggregation, 6.0), dtype=torch.float64)
    got = scan_t2i_similarity(
        REGIONS, WORDS, MASK, attention_lambda=4.0, aggregation=aggregation, lse_lambda=6.0
    )
    assert got.shape == (2, 2)
    assert torch.allclose(got, expected, atol=1e-12)


def test_scan_t2i_of_a_word_equal_to_a_region_approaches_one_with_sharp_attention():
    regions = F.normalize(torch.randn(1, 5, 8, dtype=torch.float64), dim=-1)
    words = regions[:, 2:3]  # the caption's one word is region 2
    score = scan_t2i_similarity(regions, words, torch.ones(1, 1, dtype=torch.bool), attention_lambda=1000.0)
    assert score.item() == pytest.approx(1.0, abs=1e-9)


def test_global_similarity_is_the_cosine_of_pooled_regions_and_real_words():
    got = global_similarity(REGIONS, WORDS, MASK)
    for i in range(2):
        image = REGIONS[i].mean(dim=0)
        for j in range(2):
            caption = WORDS[j][MASK[j]].mean(dim=0)
            expected = F.cosine_similarity(image, caption, dim=0).item()
            assert got[i, j].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("aggregation", ["mean", "logsumexp"])
def test_chunked_scores_equal_one_block_and_stay_within_minus_one_one(aggregation):
    generator = torch.Generator().manual_seed(0)
    regions = F.normalize(torch.randn(7, 4, 6, generator=generator), dim=-1)
    words = F.normalize(torch.randn(11, 5, 6, generator=generator), dim=-1)
    lengths = torch.tensor([5, 1, 3, 2, 5, 4, 1, 2, 3, 5, 2])
    mask = torch.arange(5)[None, :] < lengths[:, None]
    words = words * mask[..., None]

    def score(r, w, m):
        return scan_t2i_similarity(r, w, m, 9.0, aggregation, 6.0)

    whole = score(regions, words, mask)
    chunked = similarity_in_chunks(score, regions, words, mask, max_elements=64)
    assert torch.allclose(whole, chunked, atol=1e-6)
    assert whole.abs().max() <= 1.0 + 1e-6
