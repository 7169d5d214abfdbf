"""Per-point anomaly labels for the LiDAR's points, from the semantic LiDAR's labelled points.

AnoVox records a frame with two sensors at the same pose: the LiDAR (points + intensity, the
model's input; CARLA adds range noise and may drop points) and the semantic LiDAR (points +
label, no intensity). Their scans are separate, so point counts and order differ. Rule:
- same scan: equal point counts and coordinates equal within SAME_SCAN_TOLERANCE_M point by
  point -> the labels are taken index by index;
- otherwise each LiDAR point takes the label of its nearest semantic point, if that point lies
  within MATCH_RADIUS_M (AnoVox's voxel size, 0.5 m); a point with no semantic point that near
  has no anomalous counterpart and is labelled normal.
Only LiDAR points near an anomalous semantic point can become anomalous, so the search runs
on those alone (inside the anomalous points' bounding box grown by the radius): a frame
without anomalous semantic points costs nothing, one with an anomaly a small brute-force search.
"""

from __future__ import annotations

import numpy as np

MATCH_RADIUS_M = 0.5
SAME_SCAN_TOLERANCE_M = 1e-3
_BLOCK_ENTRIES = 2_000_000  # distances per brute-force block (16 MB of float64)


def same_scan(points_xyz: np.ndarray, semantic_xyz: np.ndarray) -> bool:
    """True when both arrays list the same points in the same order."""
    return points_xyz.shape == semantic_xyz.shape and bool(
        np.allclose(points_xyz, semantic_xyz, rtol=0.0, atol=SAME_SCAN_TOLERANCE_M)
    )


def align_anomaly_labels(
    points_xyz: np.ndarray, semantic_xyz: np.ndarray, semantic_anomalous: np.ndarray
) -> np.ndarray:
    """(N,) bool: anomalous LiDAR points, by the rule in the module docstring.

    points_xyz: (N, 3) LiDAR points; semantic_xyz: (M, 3) semantic points; semantic_anomalous:
    (M,) bool labels of the semantic points.
    """
    points_xyz = np.asarray(points_xyz, dtype=np.float64)
    semantic_xyz = np.asarray(semantic_xyz, dtype=np.float64)
    semantic_anomalous = np.asarray(semantic_anomalous, dtype=bool)
    if same_scan(points_xyz, semantic_xyz):
        return semantic_anomalous.copy()
    labels = np.zeros(len(points_xyz), dtype=bool)
    if not semantic_anomalous.any() or not len(points_xyz):
        return labels
    anomalous_xyz = semantic_xyz[semantic_anomalous]
    low = anomalous_xyz.min(axis=0) - MATCH_RADIUS_M
    high = anomalous_xyz.max(axis=0) + MATCH_RADIUS_M
    candidates = np.flatnonzero(((points_xyz >= low) & (points_xyz <= high)).all(axis=1))
    # The nearest semantic point of a candidate within the radius lies in the box grown by the
    # radius once more; semantic points outside it cannot be anyone's match.
    near = ((semantic_xyz >= low - MATCH_RADIUS_M) & (semantic_xyz <= high + MATCH_RADIUS_M)).all(axis=1)
    local_xyz, local_anomalous = semantic_xyz[near], semantic_anomalous[near]
    if not len(local_xyz):
        return labels
    block = max(1, _BLOCK_ENTRIES // len(local_xyz))
    local_norms = (local_xyz ** 2).sum(axis=1)
    for start in range(0, len(candidates), block):
        rows = candidates[start:start + block]
        query = points_xyz[rows]
        squared = (query ** 2).sum(axis=1)[:, None] + local_norms[None, :] - 2.0 * query @ local_xyz.T
        nearest = squared.argmin(axis=1)
        within = squared[np.arange(len(rows)), nearest] <= MATCH_RADIUS_M ** 2
        labels[rows] = within & local_anomalous[nearest]
    return labels
