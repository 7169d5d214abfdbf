"""Figures a person reads a trial from at a glance, drawn with matplotlib (Agg, no pyplot state).

Each function takes plain arrays (numpy or torch) and returns a `matplotlib.figure.Figure`;
`png_bytes(figure)` renders it, and MLflow's `log_figure(run_id, figure, "plots/x.png")`
logs it. Small on purpose (a few inches at 100 dpi): they are drawn on new best epochs and must
never slow training noticeably (bench/plot_cost.py measures it).
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tasks.common.classification_metrics import _cumulative_counts, auroc, average_precision
from tasks.common.retrieval_metrics import (
    DEFAULT_CAPTIONS_PER_IMAGE, captions_per_image_index, image_to_text_ranks, text_to_image_ranks,
)

DPI = 100
POSITIVE_COLOUR, NEGATIVE_COLOUR = "#2ca02c", "#d62728"


def new_figure(width: float, height: float, **margins: float) -> Figure:
    """A figure on an Agg canvas, independent of pyplot (safe in threads and on servers), with
    fixed margins (fractions of the figure, as `subplots_adjust` takes them): matplotlib's
    automatic layouts double the drawing time of a multi-panel figure."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(**{"left": 0.12, "right": 0.97, "bottom": 0.15, "top": 0.88, **margins})
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure rendered as PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def roc_pr_curves(scores: Any, labels: Any, title: str = "") -> Figure:
    """ROC and precision-recall curves of scores against 0/1 labels, side by side, with AUROC
    and average precision (the task's own metric functions) and each curve's chance line.

    scores, labels: 1-D, same length (higher score = more likely positive). Both classes must
    be present (ValueError otherwise: a curve of one class means nothing).
    """
    scores_t, labels_t = _tensor(scores).double(), _tensor(labels).bool()
    positives, negatives = int(labels_t.sum()), int((~labels_t).sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"ROC and PR curves need both classes; got {positives} positives, {negatives} negatives")
    _, true_positives, false_positives = _cumulative_counts(scores_t, labels_t)
    tpr = np.concatenate([[0.0], (true_positives / positives).numpy()])
    fpr = np.concatenate([[0.0], (false_positives / negatives).numpy()])
    precision = (true_positives / (true_positives + false_positives)).numpy()
    recall = (true_positives / positives).numpy()
    figure = new_figure(7.0, 3.2, left=0.09, right=0.98, wspace=0.3, top=0.84 if title else 0.9)
    roc, pr = figure.subplots(1, 2)
    roc.plot(fpr, tpr, color="#1f77b4", label=f"AUROC {auroc(scores_t, labels_t):.3f}")
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance 0.5")
    roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02))
    base_rate = positives / (positives + negatives)
    pr.step(np.concatenate([[0.0], recall]), np.concatenate([[precision[0]], precision]), where="post",
            color="#ff7f0e", label=f"AP {average_precision(scores_t, labels_t):.3f}")
    pr.axhline(base_rate, color="grey", linestyle=":", label=f"chance {base_rate:.2f}")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    for axes in (roc, pr):
        axes.legend(loc="lower right" if axes is roc else "upper right", fontsize=8)
    if title:
        figure.suptitle(title)
    return figure


def recall_at_k_curves(similarity: Any, caption_image_index: Any = None, max_k: int = 10,
                       title: str = "") -> Figure:
    """Recall@K for K = 1..max_k in both directions (image->text, text->image) with chance.

    similarity: (N images, M texts), higher = more similar; caption_image_index: (M,) the image
    of each text (default 5 per image, in order). Ranks are the task metrics' (ties count
    against the model).
    """
    similarity_t = _tensor(similarity).float()
    num_images, num_texts = similarity_t.shape
    index = (captions_per_image_index(num_images, DEFAULT_CAPTIONS_PER_IMAGE)
             if caption_image_index is None else _tensor(caption_image_index).long())
    i2t = image_to_text_ranks(similarity_t, index).numpy()
    t2i = text_to_image_ranks(similarity_t, index).numpy()
    ks = np.arange(1, max_k + 1)
    figure = new_figure(4.2, 3.2, left=0.15)
    axes = figure.subplots()
    axes.plot(ks, [(i2t <= k).mean() for k in ks], marker="o", label="image → text")
    axes.plot(ks, [(t2i <= k).mean() for k in ks], marker="s", label="text → image")
    axes.plot(ks, np.minimum(ks / num_images, 1.0), color="grey", linestyle=":", label="chance (K / images)")
    axes.set(xlabel="K", ylabel="recall@K", xticks=ks, ylim=(0, 1.02),
             title=title or f"recall@K ({num_images} images, {num_texts} texts)")
    axes.legend(fontsize=8)
    return figure


@dataclass(frozen=True)
class RetrievedItem:
    """One cell of a retrieval grid: a thumbnail (H x W [x 3], values in [0, 1] or 0-255) or
    None, a text (a caption, a file name) and whether it is a correct match (None: the query)."""

    image: Any = None
    text: str = ""
    correct: bool | None = None


def retrieval_examples(rows: Sequence[tuple[RetrievedItem, Sequence[RetrievedItem]]],
                       title: str = "") -> Figure:
    """A grid: one row per query, the query first, then its top retrieved items, each framed
    green (a correct match) or red (a wrong one); a text item shows its text in the cell.

    rows: (query, retrieved items best first). Drawn on one axes (a cell per item), which
    renders several times faster than an axes per cell.
    """
    if not rows:
        raise ValueError("a retrieval grid needs at least one query")
    columns = 1 + max(len(items) for _, items in rows)
    height = 1.75 * len(rows) + (0.3 if title else 0.0)
    figure = new_figure(1.6 * columns, height, left=0.01, right=0.99, bottom=0.01,
                        top=1 - (0.35 if title else 0.05) / height)
    axes = figure.subplots()
    axes.set_xlim(0, columns)
    axes.set_ylim(len(rows), 0)  # row 0 at the top
    axes.axis("off")
    for row, (query, items) in enumerate(rows):
        for column, item in enumerate([query, *items]):
            _draw_cell(axes, item, column, row, header="query" if column == 0 else f"#{column}")
    if title:
        figure.suptitle(title)
    return figure


def top_retrieved(similarity: Any, queries: Sequence[int], k: int = 5) -> list[list[int]]:
    """The indices of the k most similar items (columns) for each query row, best first."""
    similarity_t = _tensor(similarity).float()
    k = min(k, similarity_t.shape[1])
    return [similarity_t[query].topk(k).indices.tolist() for query in queries]


def confused_class_pairs(predictions: Any, labels: Any, class_names: Sequence[str] | None = None,
                         top: int = 10, title: str = "") -> Figure:
    """The `top` most frequent (true class -> predicted class) mistakes, as horizontal bars.

    predictions, labels: 1-D class indices; class_names: index -> name (default the index).
    """
    predicted, truth = _tensor(predictions).long().tolist(), _tensor(labels).long().tolist()
    mistakes = Counter((t, p) for t, p in zip(truth, predicted) if t != p)
    per_class = Counter(truth)
    name = (lambda i: class_names[i]) if class_names is not None else str
    pairs = mistakes.most_common(top)
    height = 0.32 * max(len(pairs), 3) + 1.1
    figure = new_figure(7.6, height, left=0.47, right=0.93, bottom=0.55 / height, top=1 - 0.35 / height)
    axes = figure.subplots()
    if not pairs:
        axes.text(0.5, 0.5, "no mistakes", ha="center", va="center", transform=axes.transAxes)
        axes.axis("off")
    else:
        labels_text = [f"{_clip(name(t))} → {_clip(name(p))}" for (t, p), _ in pairs][::-1]
        counts = [count for _, count in pairs][::-1]
        bars = axes.barh(labels_text, counts, color="#d62728")
        for bar, ((t, _), count) in zip(bars, pairs[::-1]):
            axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                      f" {count}/{per_class[t]}", va="center", fontsize=7)
        axes.set_xlabel("samples of the true class predicted as the other", fontsize=8)
        axes.tick_params(axis="y", labelsize=7)
    wrong, total = sum(mistakes.values()), len(truth)
    axes.set_title(title or f"most confused: true → predicted ({wrong} of {total} wrong)", fontsize=9)
    return figure


def similarity_histograms(positive: Any, negative: Any, bins: int = 40, title: str = "") -> Figure:
    """Histograms of matching (positive) and non-matching (negative) pair similarities on one
    axis, with their means. A healthy contrastive model separates them; a collapsed one stacks
    both at one value (all cosines 1.0) and this shows it at a glance.
    """
    positive_a = _array(positive).ravel()
    negative_a = _array(negative).ravel()
    values = np.concatenate([positive_a, negative_a])
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high - low < 1e-6:  # every similarity the same: a visible spike, not an empty plot
        low, high = low - 0.05, high + 0.05
    edges = np.linspace(low, high, bins + 1)
    figure = new_figure(4.6, 3.2, left=0.13)
    axes = figure.subplots()
    for data, colour, label in ((negative_a, NEGATIVE_COLOUR, "non-matching"),
                                (positive_a, POSITIVE_COLOUR, "matching")):
        data = data[np.isfinite(data)]
        if data.size:
            # density, so 100 positives and 10,000 negatives are comparable in one plot
            axes.hist(data, bins=edges, density=True, alpha=0.55, color=colour,
                      label=f"{label} (n={data.size}, mean {data.mean():.3f})")
            axes.axvline(data.mean(), color=colour, linestyle="--", linewidth=1)
    axes.set(xlabel="similarity", ylabel="density", title=title or "pair similarities")
    axes.legend(fontsize=7)
    return figure


def health_probes(history: Sequence[Mapping[str, Any]], prefix: str = "probe/", title: str = "") -> Figure:
    """The health probes over epochs, one small panel per signal, one line per modality.

    history: the reported results in epoch order (dicts with `probe/<modality>/<signal>`
    keys, and `val/<metric>` beside `probe/<modality>_shuffled/<metric>`). A `<modality>/dim`
    probe draws the healthy level 1/sqrt(d) in the dim_std panel; a shuffled metric is drawn
    beside the same metric with real inputs.
    """
    epochs = [int(result.get("epoch", position + 1)) for position, result in enumerate(history)]
    panels: dict[str, dict[str, list[float]]] = {}
    dims: dict[str, float] = {}
    for position, result in enumerate(history):
        for key, value in result.items():
            if not key.startswith(prefix) or not _is_number(value):
                continue
            modality, _, signal = key[len(prefix):].rpartition("/")
            if not modality:  # a signal of the whole model (positive_similarity): one shared panel
                modality, signal = signal, "whole model"
            if signal == "dim":
                dims[modality] = float(value)
                continue
            line = panels.setdefault(signal, {}).setdefault(modality or signal, [math.nan] * len(history))
            line[position] = float(value)
    for signal, lines in panels.items():
        if any(modality.endswith("_shuffled") for modality in lines):
            real = [float(result.get(f"val/{signal}", math.nan)) for result in history]
            lines["real inputs (val)"] = real
    if not panels:
        raise ValueError(f"no numeric {prefix}* keys in the history")
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    height = 2.5 * rows
    figure = new_figure(3.3 * columns, height, left=0.07, right=0.98, wspace=0.3, hspace=0.5,
                        bottom=0.45 / height, top=1 - (0.55 if title else 0.3) / height)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, (signal, lines) in zip(grid.flat, sorted(panels.items())):
        for modality, values in sorted(lines.items()):
            axes.plot(epochs, values, marker="o", markersize=3, label=modality)
        if signal == "dim_std":
            for dim in sorted(set(dims.values())):
                axes.axhline(1 / math.sqrt(dim), color="grey", linestyle=":", linewidth=1,
                             label=f"1/sqrt({int(dim)}): healthy spread")
        axes.set_title(signal, fontsize=9)
        axes.set_xlabel("epoch", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=6)
    for axes in list(grid.flat)[len(panels):]:
        axes.axis("off")
    if title:
        figure.suptitle(title)
    return figure


def _draw_cell(axes, item: RetrievedItem, column: int, row: int, header: str) -> None:
    """One grid cell in data units: [column, column + 1] x [row, row + 1], image on top, text
    below it (or in its place), framed by how the item matched."""
    from matplotlib.patches import Rectangle

    colour = {True: POSITIVE_COLOUR, False: NEGATIVE_COLOUR, None: "black"}[item.correct]
    left, top = column + 0.06, row + 0.14
    box = (left, top, 0.88, 0.58)  # x, y, width, height of the picture area
    if item.image is not None:
        image = _array(item.image)
        if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = np.moveaxis(image, 0, -1)  # CHW tensors
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.dtype != np.uint8:
            image = np.clip(image / (255.0 if image.max() > 1.0 else 1.0), 0.0, 1.0)
        axes.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest",
                    extent=(left, left + box[2], top + box[3], top), aspect="auto")
        if item.text:
            axes.text(column + 0.5, top + box[3] + 0.04, _wrap(item.text), ha="center", va="top", fontsize=6)
    elif item.text:
        axes.text(column + 0.5, top + box[3] / 2, _wrap(item.text, width=18, lines=5),
                  ha="center", va="center", fontsize=7)
    axes.add_patch(Rectangle(box[:2], box[2], box[3], fill=False, edgecolor=colour,
                             linewidth=3 if item.correct is not None else 1))
    axes.text(column + 0.5, row + 0.1, header, ha="center", va="bottom", fontsize=7, color=colour)


def _wrap(text: str, width: int = 22, lines: int = 3) -> str:
    words, out, current = text.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    out.append(current)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1] + "…"
    return "\n".join(out)


def _clip(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _tensor(values: Any) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu()
    return torch.as_tensor(np.asarray(values))


def _array(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)
