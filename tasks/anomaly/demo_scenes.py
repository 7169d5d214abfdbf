"""A procedural stand-in for AnoVox's drives: a road seen by a camera, a LiDAR and a semantic LiDAR.

A scenario is a straight road with 2-4 parked cars (boxes; some are agents, labelled with
AnoVox's agent colour), 0-2 road signs (a pole and a retroreflective, very bright plate) and 0-3
roadside bushes (round, green or brown, dim to the LiDAR), in world metres. Each frame of the scenario sees it from the ego vehicle, which drives EGO_STEP_M
further per frame (vehicle frame: x forward, y left, z up, as AnoVox stores its scans). A frame
is rendered as
- the semantic scan: points sampled on every surface, each with its AnoVox label colour (road,
  terrain, car, agent car, pole, traffic sign, anomaly (245, 0, 0));
- the LiDAR scan: the same points with range noise, LIDAR_DROPOUT of them dropped (so the two
  scans differ in count, as two AnoVox sensors do), and an intensity (ground low, cars medium,
  sign plates and odd objects very bright);
- a 32x32 image through a pinhole camera: sky, verge, road, cars as dark or muted boxes, signs
  as red, yellow, blue or white squares on poles, bushes as green or brown blobs.

35% of the scenarios are anomalous: an unusual object (a floating sphere, a ring or low debris
on the road) stands ahead, its 6-11 points per frame labelled anomaly (of some 300-800 in the
scan: subsampled to 128 points, a scene keeps one or two of them, often none). In 40% of them both
sensors see it: in the cloud as an odd-shaped cluster of medium to high intensity (overlapping
a car's and a sign plate's, so only shape and place tell), in the image as a blob in a colour
signs and cars also have (only its round shape and its place, on the road and off the ground,
tell it apart). In 20% the camera alone sees it (its points look like a car: a box of ordinary
intensity) and in 40% the LiDAR alone (hidden from the camera, as by glare, dark or occlusion:
no blob). So the camera misses 40% of the anomalies and the LiDAR 20% (and most of a small
anomaly's few points are lost when a scene is subsampled to few points), and bushes (round, at the roadside)
are the normal look-alikes of both. A few normal frames carry 1-3 stray anomaly labels on
ground points (annotation noise, under the scene-label threshold); an anomaly has 6-11 points
before dropout, so any `min_anomalous_points` from 4 to 6 labels the demo the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from tasks.anomaly.anovox_labels import ANOMALY_COLOUR, BENCHMARK_PALETTE, DEFINITIONS_OTHER_COLOURS

IMAGE_SIDE = 32
SUPERSAMPLING = 4  # drawn at 4x then downscaled, so small far objects still leave colour
HORIZON_ROW = 10.0
FOCAL_PIXELS = 40.0
CAMERA_HEIGHT = 1.6
ROAD_HALF_WIDTH = 3.5
SIGN_HEIGHT = 2.0  # bottom of a sign's plate
EGO_STEP_M = 2.0  # ego travel between two frames
RANGE_NOISE_M = 0.02  # LiDAR range noise (standard deviation, along the ray)
LIDAR_DROPOUT = 0.05
IMAGE_NOISE_STD = 16.0
ANOMALY_POINTS = (6, 12)  # points of an anomaly per frame, before dropout (high exclusive): a
# small object returns few LiDAR points, so a scene subsampled to few points may keep none of them
ANOMALY_SCALE = 0.7  # times the anomaly shapes' base sizes
ANOMALY_INTENSITY = (0.35, 0.95)

CAR_COLOURS = [(45, 45, 50), (150, 150, 155), (30, 40, 90), (90, 25, 30), (200, 200, 200)]
SIGN_COLOURS = [(215, 35, 35), (240, 200, 30), (30, 70, 200), (240, 240, 240)]
BUSH_COLOURS = [(60, 110, 40), (85, 130, 50), (110, 85, 50)]
# Colours signs and cars also have: a blob's hue alone never tells it is an anomaly.
ANOMALY_COLOURS = [(215, 35, 35), (240, 200, 30), (30, 70, 200), (200, 200, 200), (45, 45, 50)]
ROAD_COLOUR = (95, 95, 100)
# Which sensor sees the anomaly; the probabilities of the three cases.
VISIBILITY = {"both": 0.4, "camera_only": 0.2, "lidar_only": 0.4}
AGENT_SHARE = 0.2  # parked cars labelled as agents (class + 100): never anomalies

# AnoVox label colours (anovox-label.yaml color_map ids; Definitions.py agent_car).
LABEL_ROAD = BENCHMARK_PALETTE[1]
LABEL_POLE = BENCHMARK_PALETTE[6]
LABEL_SIGN = BENCHMARK_PALETTE[8]
LABEL_TERRAIN = BENCHMARK_PALETTE[10]
LABEL_VEGETATION = BENCHMARK_PALETTE[9]
LABEL_CAR = BENCHMARK_PALETTE[14]
LABEL_AGENT_CAR = DEFINITIONS_OTHER_COLOURS[1]
LABEL_ANOMALY = ANOMALY_COLOUR


@dataclass(frozen=True)
class Car:
    x: float
    y: float
    length: float
    width: float
    height: float
    colour: tuple[int, int, int]
    label: tuple[int, int, int]


@dataclass(frozen=True)
class Sign:
    x: float
    y: float
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class Bush:
    x: float
    y: float
    radius: float
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class OddObject:
    x: float
    y: float
    shape: str  # sphere | debris | ring
    radius: float
    centre_z: float
    visibility: str  # a key of VISIBILITY
    colour: tuple[int, int, int]
    point_count: int


@dataclass(frozen=True)
class ScenarioPlan:
    """A scenario's world, in metres along the road from the ego's first position."""

    cars: list[Car] = field(default_factory=list)
    signs: list[Sign] = field(default_factory=list)
    bushes: list[Bush] = field(default_factory=list)
    anomaly: OddObject | None = None


@dataclass
class RenderedFrame:
    """One frame: image (32, 32, 3) uint8; semantic scan xyz (M, 3) float32 with label colours
    (M, 3) uint8; LiDAR scan (N, 4) float32 x, y, z, intensity."""

    image: np.ndarray
    semantic_xyz: np.ndarray
    semantic_colours: np.ndarray
    lidar: np.ndarray


def plan_scenario(rng: np.random.Generator, anomalous: bool, frames: int) -> ScenarioPlan:
    """Objects placed so that every one is ahead of the ego in each of the `frames` frames."""
    travel = EGO_STEP_M * (frames - 1)
    cars = []
    for _ in range(int(rng.integers(2, 5))):
        x = rng.uniform(5.0, 25.0) + travel
        colour = CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))]
        label = LABEL_AGENT_CAR if rng.random() < AGENT_SHARE else LABEL_CAR
        cars.append(Car(x, rng.uniform(-0.3, 0.3) * (x - travel), rng.uniform(3.5, 4.5),
                        rng.uniform(1.6, 2.0), rng.uniform(1.3, 1.7), colour, label))
    signs = []
    for _ in range(int(rng.integers(0, 3))):
        x = rng.uniform(12.0, 24.0) + travel  # far enough that the roadside is in view
        y = rng.choice([-1, 1]) * rng.uniform(ROAD_HALF_WIDTH + 0.5, 0.35 * (x - travel))
        signs.append(Sign(x, y, SIGN_COLOURS[int(rng.integers(len(SIGN_COLOURS)))]))
    bushes = []
    for _ in range(int(rng.integers(0, 4))):
        x = rng.uniform(14.0, 26.0) + travel  # far enough that the roadside is in view
        y = rng.choice([-1, 1]) * rng.uniform(ROAD_HALF_WIDTH + 0.8, 0.35 * (x - travel))
        bushes.append(Bush(x, y, float(rng.uniform(0.6, 1.0)),
                           BUSH_COLOURS[int(rng.integers(len(BUSH_COLOURS)))]))
    anomaly = None
    if anomalous:
        visibility = str(rng.choice(list(VISIBILITY), p=list(VISIBILITY.values())))
        x = rng.uniform(6.0, 22.0) + travel
        shape = str(rng.choice(["sphere", "debris", "ring"]))
        if shape == "sphere":
            radius, centre_z = ANOMALY_SCALE * rng.uniform(0.45, 0.8), rng.uniform(1.0, 2.0)
        elif shape == "debris":  # lost cargo: a low, wide scatter on the road
            radius, centre_z = ANOMALY_SCALE * 0.8, 0.2
        else:
            radius, centre_z = ANOMALY_SCALE * rng.uniform(0.5, 0.9), rng.uniform(1.0, 1.6)
        anomaly = OddObject(x, rng.uniform(-0.25, 0.25) * (x - travel), shape, float(radius),
                            float(centre_z), visibility,
                            ANOMALY_COLOURS[int(rng.integers(len(ANOMALY_COLOURS)))],
                            int(rng.integers(*ANOMALY_POINTS)))
    return ScenarioPlan(cars, signs, bushes, anomaly)


def project(x: float, y: float, z: float) -> tuple[float, float]:
    """Pinhole projection of a vehicle-frame point to (column, row) on the 32x32 image."""
    column = IMAGE_SIDE / 2 - FOCAL_PIXELS * y / x
    row = HORIZON_ROW + FOCAL_PIXELS * (CAMERA_HEIGHT - z) / x
    return column, row


def ground_points(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Road and verge points (n, 4) with their label colours (n, 3)."""
    count = int(rng.integers(220, 480))
    x = rng.uniform(2.5, 30.0, count)
    y = rng.uniform(-0.4, 0.4, count) * x
    z = rng.normal(0.0, 0.03, count)
    on_road = np.abs(y) < ROAD_HALF_WIDTH
    intensity = np.where(on_road, rng.uniform(0.05, 0.15, count), rng.uniform(0.15, 0.3, count))
    labels = np.where(on_road[:, None], LABEL_ROAD, LABEL_TERRAIN)
    return np.stack([x, y, z, intensity], axis=1), labels


def box_points(rng, centre_x, centre_y, length, width, height, intensity_range, count):
    """`count` points filling a box standing on the ground, with intensities in the range."""
    x = centre_x + rng.uniform(-length / 2, length / 2, count)
    y = centre_y + rng.uniform(-width / 2, width / 2, count)
    z = rng.uniform(0.0, height, count)
    intensity = rng.uniform(*intensity_range, count)
    return np.stack([x, y, z, intensity], axis=1)


def odd_object_points(rng, odd: OddObject, x: float) -> np.ndarray:
    """The odd object's points at distance x, bright to the LiDAR."""
    count = odd.point_count
    if odd.shape == "sphere":
        direction = rng.normal(size=(count, 3))
        offsets = odd.radius * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    elif odd.shape == "debris":
        offsets = np.stack(
            [rng.uniform(-1, 1, count), rng.uniform(-1, 1, count), rng.uniform(-0.15, 0.2, count)], axis=1
        )
    else:
        angle = rng.uniform(0, 2 * np.pi, count)
        offsets = np.stack(
            [rng.normal(0, 0.05, count), odd.radius * np.cos(angle), odd.radius * np.sin(angle)], axis=1
        )
    xyz = np.array([x, odd.y, odd.centre_z]) + offsets
    return np.concatenate([xyz, rng.uniform(*ANOMALY_INTENSITY, (count, 1))], axis=1)


def bush_points(rng, bush: Bush, x: float) -> np.ndarray:
    """A bush at distance x: a round, ground-standing cluster, dim to the LiDAR."""
    count = int(rng.integers(15, 30))
    direction = rng.normal(size=(count, 3))
    offsets = bush.radius * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    xyz = np.array([x, bush.y, bush.radius]) + offsets * np.array([1.0, 1.0, 0.9])
    return np.concatenate([xyz, rng.uniform(0.15, 0.45, (count, 1))], axis=1)


def sign_points(rng, centre_x, centre_y) -> tuple[np.ndarray, np.ndarray]:
    """A road sign: a pole (ordinary intensity) and a retroreflective plate (very bright), with
    their label colours."""
    pole_count, plate_count = int(rng.integers(6, 12)), int(rng.integers(8, 14))
    pole = np.stack(
        [np.full(pole_count, centre_x), np.full(pole_count, centre_y),
         rng.uniform(0, SIGN_HEIGHT, pole_count), rng.uniform(0.2, 0.4, pole_count)], axis=1
    )
    plate = np.stack(
        [np.full(plate_count, centre_x), centre_y + rng.uniform(-0.3, 0.3, plate_count),
         rng.uniform(SIGN_HEIGHT, SIGN_HEIGHT + 0.6, plate_count),
         rng.uniform(0.75, 1.0, plate_count)], axis=1
    )
    labels = np.array([LABEL_POLE] * pole_count + [LABEL_SIGN] * plate_count)
    return np.concatenate([pole, plate]), labels


def draw_background(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    scale = SUPERSAMPLING
    side = IMAGE_SIDE * scale
    sky = tuple(int(c) for c in np.clip(np.array([120, 170, 225]) + rng.integers(-15, 16, 3), 0, 255))
    verge = tuple(int(c) for c in np.clip(np.array([70, 130, 60]) + rng.integers(-15, 16, 3), 0, 255))
    horizon = HORIZON_ROW * scale
    draw.rectangle([0, 0, side, horizon], fill=sky)
    draw.rectangle([0, horizon, side, side], fill=verge)
    # The road: from the vanishing point to the bottom edge, ROAD_HALF_WIDTH either side.
    near_x = FOCAL_PIXELS * CAMERA_HEIGHT / (IMAGE_SIDE - HORIZON_ROW)  # ground seen at the bottom
    left, _ = project(near_x, ROAD_HALF_WIDTH, 0.0)
    right, _ = project(near_x, -ROAD_HALF_WIDTH, 0.0)
    draw.polygon(
        [(side / 2, horizon), (left * scale, side), (right * scale, side)], fill=ROAD_COLOUR
    )


def draw_box(draw, centre_x, centre_y, width, height, colour) -> None:
    """A standing object seen from behind: a filled rectangle from the ground to its height."""
    scale = SUPERSAMPLING
    left, bottom = project(centre_x, centre_y + width / 2, 0.0)
    right, top = project(centre_x, centre_y - width / 2, height)
    draw.rectangle([left * scale, top * scale, right * scale, bottom * scale], fill=colour)


def draw_sign(draw, centre_x, centre_y, colour) -> None:
    """A grey pole with a coloured square plate on top."""
    scale = SUPERSAMPLING
    column, bottom = project(centre_x, centre_y, 0.0)
    _, plate_bottom = project(centre_x, centre_y, SIGN_HEIGHT)
    _, plate_top = project(centre_x, centre_y, SIGN_HEIGHT + 0.6)
    half = (plate_bottom - plate_top) / 2
    draw.line([column * scale, bottom * scale, column * scale, plate_bottom * scale],
              fill=(120, 120, 120), width=max(1, int(scale * half / 3)))
    draw.rectangle([(column - half) * scale, plate_top * scale,
                    (column + half) * scale, plate_bottom * scale], fill=colour)


def draw_blob(draw, rng, centre_x, centre_y, centre_z, radius, colour) -> None:
    """An irregular blob (three overlapping ellipses) at the object's projection, >= 2 px wide."""
    scale = SUPERSAMPLING
    column, row = project(centre_x, centre_y, centre_z)
    pixels = max(1.5, FOCAL_PIXELS * radius / centre_x)
    for _ in range(3):
        dx, dy = rng.normal(0, 0.35 * pixels, 2)
        rx, ry = pixels * rng.uniform(0.6, 1.0, 2)
        box = [(column + dx - rx) * scale, (row + dy - ry) * scale,
               (column + dx + rx) * scale, (row + dy + ry) * scale]
        draw.ellipse(box, fill=colour)


def render_frame(plan: ScenarioPlan, frame: int, rng: np.random.Generator) -> RenderedFrame:
    """The scenario seen from the ego's position at `frame` (see the module docstring)."""
    travel = EGO_STEP_M * frame
    side = IMAGE_SIDE * SUPERSAMPLING
    canvas = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(canvas)
    draw_background(draw, rng)
    ground, ground_labels = ground_points(rng)
    clouds, label_parts = [ground], [ground_labels]
    drawings: list[tuple[float, Callable[[], None]]] = []  # (depth, draw call): far ones first

    for car in plan.cars:
        x = car.x - travel
        count = int(rng.integers(25, 46))
        clouds.append(box_points(rng, x, car.y, car.length, car.width, car.height, (0.15, 0.55), count))
        label_parts.append(np.array([car.label] * count))
        drawings.append((x, lambda x=x, c=car: draw_box(draw, x, c.y, c.width, c.height, c.colour)))
    for sign in plan.signs:
        x = sign.x - travel
        points, labels = sign_points(rng, x, sign.y)
        clouds.append(points)
        label_parts.append(labels)
        drawings.append((x, lambda x=x, s=sign: draw_sign(draw, x, s.y, s.colour)))
    for bush in plan.bushes:
        x = bush.x - travel
        points = bush_points(rng, bush, x)
        clouds.append(points)
        label_parts.append(np.array([LABEL_VEGETATION] * len(points)))
        drawings.append(
            (x, lambda x=x, b=bush: draw_blob(draw, rng, x, b.y, b.radius, b.radius, b.colour))
        )

    odd = plan.anomaly
    if odd is not None:
        x = odd.x - travel
        points = odd_object_points(rng, odd, x)
        if odd.visibility == "camera_only":  # to the LiDAR it looks like one more car
            points = box_points(rng, x, odd.y, rng.uniform(3.5, 4.5), rng.uniform(1.6, 2.0),
                                rng.uniform(1.3, 1.7), (0.15, 0.55), odd.point_count)
        clouds.append(points)
        label_parts.append(np.array([LABEL_ANOMALY] * odd.point_count))
        if odd.visibility != "lidar_only":  # hidden from the camera (glare, occlusion) otherwise
            drawings.append(
                (x, lambda x=x: draw_blob(draw, rng, x, odd.y, odd.centre_z, odd.radius, odd.colour))
            )
    elif rng.random() < 0.15:  # annotation noise: a few stray labels, under any sane threshold
        strays = rng.choice(len(ground), int(rng.integers(1, 4)), replace=False)
        ground_labels[strays] = LABEL_ANOMALY

    for _, draw_call in sorted(drawings, key=lambda item: -item[0]):
        draw_call()
    image = canvas.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, IMAGE_NOISE_STD, (IMAGE_SIDE, IMAGE_SIDE, 3))

    surface = np.concatenate(clouds)
    colours = np.concatenate(label_parts).astype(np.uint8)
    order = rng.permutation(len(surface))  # sensors do not list an object's points together
    surface, colours = surface[order], colours[order]
    kept = rng.random(len(surface)) >= LIDAR_DROPOUT
    lidar = surface[kept].copy()
    distance = np.linalg.norm(lidar[:, :3], axis=1, keepdims=True)
    lidar[:, :3] *= 1.0 + rng.normal(0, RANGE_NOISE_M, (len(lidar), 1)) / distance
    return RenderedFrame(
        image=np.clip(pixels, 0, 255).astype(np.uint8),
        semantic_xyz=surface[:, :3].astype(np.float32),
        semantic_colours=colours,
        lidar=lidar.astype(np.float32),
    )
