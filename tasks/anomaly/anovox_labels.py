"""AnoVox's own semantic labels, and which of them mark an anomaly.

Two encodings exist on disk, both read here with the dataset's own tables:

Semantic tags (the generator's SEMANTIC-LIDAR(...)/*.npy, 4th column), from `LABELS` in the
AnoVox repository's Definitions.py (fzi-forschungszentrum-informatik/anovox):
    0-28     CARLA's classes (road, sidewalk, ..., car 14, ..., guard rail 28)   normal
    29-34    the anomaly categories home, animal, nature, special, airplane, falling   ANOMALY
    100      anomaly (e.g. the braking vehicle of a sudden-braking scenario)         ANOMALY
    101-128  agents: a vehicle or walker in agent mode is relabelled with its class + 100
             (Definitions.py lists agent_pedestrian 112 ... agent_bicycle 119)      normal
    214      the ego vehicle                                                           normal
Agent tags are not anomalies even where tag - 100 is an anomaly-looking number: the scenario
code (Scenarios/ScenarioMain.py) adds 100 to an agent's CARLA tag, so 100 + 14 = 114 is a car.

Label colours (the released SEMANTIC_PCD/*.pcd `rgb` field), from the AnoVox benchmark's label
mapping (lukasnroessler/Open_world_3D_semantic_segmentation config/label_mapping/anovox-label.yaml,
`color_map`, the same palette as anovox benchmark/voxelize_groundtruth.py): entries 0-28 are the
Cityscapes colours of the classes above, 29-32 (home, animal, nature, special) have their own
colours, and 33 and 34, the labels that file names "anomaly", are (245, 0, 0). The benchmark's
evaluation (benchmark/eval/evaluate_sensor.py) marks a point anomalous iff its colour is
(245, 0, 0), which is also Definitions.py's ANOMALY_COLOR and the colour of its label 100.
Colours Definitions.py gives to its other labels (the anomaly categories (245, 29..34, 0), the
agents, the ego vehicle) are known too. An unknown tag or colour is an error, never a guess.
"""

from __future__ import annotations

import numpy as np

ANOMALY_TAGS = frozenset({29, 30, 31, 32, 33, 34, 100})
NORMAL_CLASS_TAGS = frozenset(range(0, 29))
AGENT_TAG_OFFSET = 100
AGENT_TAGS = frozenset(tag + AGENT_TAG_OFFSET for tag in range(1, 29))
EGO_VEHICLE_TAG = 214
KNOWN_TAGS = NORMAL_CLASS_TAGS | ANOMALY_TAGS | AGENT_TAGS | {EGO_VEHICLE_TAG}

ANOMALY_COLOUR = (245, 0, 0)

# anovox-label.yaml color_map, index = label id (0-34).
BENCHMARK_PALETTE = (
    (0, 0, 0), (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32), (110, 190, 160), (170, 120, 50), (55, 90, 80),
    (45, 60, 150), (157, 234, 50), (81, 0, 81), (150, 100, 100), (230, 150, 140),
    (180, 165, 180), (250, 128, 114), (255, 36, 0), (224, 17, 95), (184, 15, 10),
    (245, 0, 0), (245, 0, 0),
)
# Definitions.py LABELS colours that the palette above does not hold.
DEFINITIONS_ANOMALY_COLOURS = tuple((245, tag, 0) for tag in range(29, 35))
DEFINITIONS_OTHER_COLOURS = (
    (220, 20, 61), (3, 0, 143), (0, 0, 71), (0, 60, 101), (255, 0, 1), (0, 0, 231),
    (119, 11, 33),  # agent_pedestrian, agent_car, agent_truck, agent_bus, agent_rider, ...
    (0, 0, 1),  # ego_vehicle
)
ANOMALY_COLOURS = frozenset({ANOMALY_COLOUR, *DEFINITIONS_ANOMALY_COLOURS})
KNOWN_COLOURS = frozenset({*BENCHMARK_PALETTE, *DEFINITIONS_ANOMALY_COLOURS, *DEFINITIONS_OTHER_COLOURS})


class UnknownLabel(ValueError):
    """Labels outside AnoVox's label map; the message lists up to five of them."""


def _listed(values) -> str:
    values = sorted(values)
    shown = ", ".join(str(value) for value in values[:5])
    return shown + (f" and {len(values) - 5} more" if len(values) > 5 else "")


def anomalous_tags(tags: np.ndarray) -> np.ndarray:
    """(N,) bool: which semantic tags are anomalies. Raises UnknownLabel for a tag that is not
    an integer of AnoVox's label map."""
    values = np.asarray(tags, dtype=np.float64)
    if not np.isfinite(values).all() or (values != np.round(values)).any():
        raise UnknownLabel("semantic tags that are not whole numbers")
    integers = values.astype(np.int64)
    unique = set(np.unique(integers).tolist())
    unknown = unique - KNOWN_TAGS
    if unknown:
        raise UnknownLabel(
            f"semantic tag(s) {_listed(unknown)} outside AnoVox's label map (0-34, 100, 101-128, 214)"
        )
    return np.isin(integers, sorted(ANOMALY_TAGS))


def anomalous_colours(colours: np.ndarray) -> np.ndarray:
    """(N,) bool from (N, 3) uint8 label colours: True for the anomaly colours. Raises
    UnknownLabel for a colour of no AnoVox label."""
    colours = np.asarray(colours, dtype=np.uint32)
    packed = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    unique = np.unique(packed)
    known = np.array(sorted(_pack(colour) for colour in KNOWN_COLOURS), dtype=np.uint32)
    unknown = unique[~np.isin(unique, known)]
    if len(unknown):
        raise UnknownLabel(
            f"label colour(s) {_listed(_unpack(value) for value in unknown.tolist())} of no AnoVox label"
        )
    return np.isin(packed, [_pack(colour) for colour in ANOMALY_COLOURS])


def is_label_palette(colours: np.ndarray) -> bool:
    """Whether (N, 3) colours look like semantic labels rather than grey intensities: every
    colour is an AnoVox label colour and at least one is not grey."""
    colours = np.asarray(colours, dtype=np.uint32)
    if not len(colours):
        return False
    packed = np.unique((colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2])
    known = [_pack(colour) for colour in KNOWN_COLOURS]
    grey = (colours[:, 0] == colours[:, 1]) & (colours[:, 1] == colours[:, 2])
    return bool(np.isin(packed, known).all() and not grey.all())


def _pack(colour: tuple[int, int, int]) -> int:
    return (colour[0] << 16) | (colour[1] << 8) | colour[2]


def _unpack(value: int) -> tuple[int, int, int]:
    return ((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF)
