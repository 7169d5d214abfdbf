"""A procedural stand-in for AnoVox: road scenes seen by a camera and a LiDAR, in the real layout.

Each scene is a road ahead of a vehicle. The point cloud (vehicle frame, metres: x forward, y
left, z up) holds a ground plane (road and verge, low intensity) and 2-4 parked cars (boxes,
medium intensity) and 0-2 road signs (a pole and a retroreflective, very bright plate). The
32x32 image shows the same scene through a pinhole camera: sky, verge, road, each car as a dark
or muted box and each sign as a red, yellow, blue or white square on a pole.

35% of the scenes of every split are anomalous: an unusual object (a floating sphere, a ring or
low debris on the road) whose 20-30 points are labelled 1. In half of them it is visible to both
sensors: in the cloud as an odd-shaped cluster of high intensity (as bright as a sign's plate,
so only the shape tells them apart), in the image as a magenta, lime or cyan blob where the
object projects (a different hue from any sign). In a quarter it is visible to the camera only
(its points look like a car: a box of ordinary intensity) and in a quarter to the LiDAR only
(hidden from the camera, as by glare or occlusion: no blob is drawn). So each modality alone misses a
quarter of the anomalies, and a model must read both. A few normal scenes carry 1-3 stray
anomaly labels on ground points (annotation noise, below the scene-label threshold); anomalies
have at least 20 points, so any `min_anomalous_points` from 4 to 20 labels the demo the same.

Point counts vary (about 300-700), so both subsampling and padding happen at num_points 512.
Every 5th scene's cloud is a PLY file (alternately binary and ASCII), the rest are .npy; the
manifest is manifest.csv. Everything is deterministic in the seed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tasks.anomaly.manifest import COLUMNS, CSV_MANIFEST
from tasks.anomaly.ply import write_ply_points

SPLIT_SIZES = {"train": 200, "val": 50, "test": 50}
ANOMALOUS_FRACTION = 0.35
IMAGE_SIDE = 32
SUPERSAMPLING = 4  # drawn at 4x then downscaled, so small far objects still leave colour
HORIZON_ROW = 10.0
FOCAL_PIXELS = 40.0
CAMERA_HEIGHT = 1.6
ROAD_HALF_WIDTH = 3.5
PLY_EVERY = 5
SIGN_HEIGHT = 2.0  # bottom of a sign's plate

CAR_COLOURS = [(45, 45, 50), (150, 150, 155), (30, 40, 90), (90, 25, 30), (200, 200, 200)]
SIGN_COLOURS = [(215, 35, 35), (240, 200, 30), (30, 70, 200), (240, 240, 240)]
ANOMALY_COLOURS = [(235, 30, 215), (120, 250, 30), (30, 235, 235)]
ROAD_COLOUR = (95, 95, 100)
# Which sensor sees the anomaly; the probabilities of the three cases.
VISIBILITY = {"both": 0.5, "camera_only": 0.25, "lidar_only": 0.25}


def project(x: float, y: float, z: float) -> tuple[float, float]:
    """Pinhole projection of a vehicle-frame point to (column, row) on the 32x32 image."""
    column = IMAGE_SIDE / 2 - FOCAL_PIXELS * y / x
    row = HORIZON_ROW + FOCAL_PIXELS * (CAMERA_HEIGHT - z) / x
    return column, row


def ground_points(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Road and verge points with their (0) labels: (n, 4) and (n,)."""
    count = int(rng.integers(220, 480))
    x = rng.uniform(2.5, 30.0, count)
    y = rng.uniform(-0.4, 0.4, count) * x
    z = rng.normal(0.0, 0.03, count)
    on_road = np.abs(y) < ROAD_HALF_WIDTH
    intensity = np.where(on_road, rng.uniform(0.05, 0.15, count), rng.uniform(0.15, 0.3, count))
    return np.stack([x, y, z, intensity], axis=1), np.zeros(count, dtype=np.uint8)


def box_points(rng, centre_x, centre_y, length, width, height, intensity_range, count):
    """`count` points filling a box standing on the ground, with intensities in the range."""
    x = centre_x + rng.uniform(-length / 2, length / 2, count)
    y = centre_y + rng.uniform(-width / 2, width / 2, count)
    z = rng.uniform(0.0, height, count)
    intensity = rng.uniform(*intensity_range, count)
    return np.stack([x, y, z, intensity], axis=1)


def odd_object_points(rng, centre_x, centre_y, count) -> tuple[np.ndarray, float, float]:
    """An unusual object: a floating sphere, a ring or low debris, bright to the LiDAR.

    Returns (points (count, 4), its height centre z, its radius) for drawing it in the image.
    """
    shape = rng.choice(["sphere", "debris", "ring"])
    if shape == "sphere":
        radius, centre_z = rng.uniform(0.6, 1.0), rng.uniform(1.2, 2.2)
        direction = rng.normal(size=(count, 3))
        offsets = radius * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    elif shape == "debris":  # lost cargo: a low, wide scatter on the road
        radius, centre_z = 1.0, 0.2
        offsets = np.stack(
            [rng.uniform(-1, 1, count), rng.uniform(-1, 1, count), rng.uniform(-0.15, 0.2, count)],
            axis=1,
        )
    else:
        radius, centre_z = rng.uniform(0.7, 1.1), rng.uniform(1.0, 1.8)
        angle = rng.uniform(0, 2 * np.pi, count)
        offsets = np.stack(
            [rng.normal(0, 0.05, count), radius * np.cos(angle), radius * np.sin(angle)], axis=1
        )
    xyz = np.array([centre_x, centre_y, centre_z]) + offsets
    intensity = rng.uniform(0.6, 1.0, (count, 1))
    return np.concatenate([xyz, intensity], axis=1), centre_z, radius


def sign_points(rng, centre_x, centre_y) -> np.ndarray:
    """A road sign: a pole (ordinary intensity) and a retroreflective plate (very bright)."""
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
    return np.concatenate([pole, plate])


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


def make_scene(rng: np.random.Generator, anomalous: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: (image (32, 32, 3) uint8, points (N, 4) float32, point labels (N,) uint8)."""
    side = IMAGE_SIDE * SUPERSAMPLING
    canvas = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(canvas)
    draw_background(draw, rng)
    points, labels = ground_points(rng)
    clouds, label_parts = [points], [labels]
    drawings = []  # (depth, draw call): far objects are drawn first

    for _ in range(int(rng.integers(2, 5))):
        x = rng.uniform(5.0, 25.0)
        y = rng.uniform(-0.3, 0.3) * x
        length, width, height = rng.uniform(3.5, 4.5), rng.uniform(1.6, 2.0), rng.uniform(1.3, 1.7)
        count = int(rng.integers(25, 46))
        clouds.append(box_points(rng, x, y, length, width, height, (0.15, 0.55), count))
        label_parts.append(np.zeros(count, dtype=np.uint8))
        colour = CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))]
        drawings.append((x, lambda x=x, y=y, w=width, h=height, c=colour: draw_box(draw, x, y, w, h, c)))
    for _ in range(int(rng.integers(0, 3))):
        x = rng.uniform(12.0, 24.0)  # far enough that the roadside is in view
        y = rng.choice([-1, 1]) * rng.uniform(ROAD_HALF_WIDTH + 0.5, 0.35 * x)
        sign = sign_points(rng, x, y)
        clouds.append(sign)
        label_parts.append(np.zeros(len(sign), dtype=np.uint8))
        colour = SIGN_COLOURS[int(rng.integers(len(SIGN_COLOURS)))]
        drawings.append((x, lambda x=x, y=y, c=colour: draw_sign(draw, x, y, c)))

    if anomalous:
        visibility = rng.choice(list(VISIBILITY), p=list(VISIBILITY.values()))
        x = rng.uniform(5.0, 16.0)
        y = rng.uniform(-0.25, 0.25) * x
        count = int(rng.integers(20, 31))
        odd, centre_z, radius = odd_object_points(rng, x, y, count)
        if visibility == "camera_only":  # to the LiDAR it looks like one more car
            odd = box_points(rng, x, y, rng.uniform(3.5, 4.5), rng.uniform(1.6, 2.0),
                             rng.uniform(1.3, 1.7), (0.15, 0.55), count)
        colour = ANOMALY_COLOURS[int(rng.integers(len(ANOMALY_COLOURS)))]
        clouds.append(odd)
        label_parts.append(np.ones(count, dtype=np.uint8))
        if visibility != "lidar_only":  # hidden from the camera (glare, occlusion) otherwise
            drawings.append(
                (x, lambda x=x, y=y, z=centre_z, r=radius, c=colour: draw_blob(draw, rng, x, y, z, r, c))
            )
    elif rng.random() < 0.15:  # annotation noise: a few stray labels, under any sane threshold
        strays = rng.choice(len(labels), int(rng.integers(1, 4)), replace=False)
        label_parts[0][strays] = 1

    for _, draw_call in sorted(drawings, key=lambda item: -item[0]):
        draw_call()
    image = canvas.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 10.0, (IMAGE_SIDE, IMAGE_SIDE, 3))
    points = np.concatenate(clouds).astype(np.float32)
    point_labels = np.concatenate(label_parts)
    order = rng.permutation(len(points))  # sensors do not list an object's points together
    return np.clip(pixels, 0, 255).astype(np.uint8), points[order], point_labels[order]


def make_demo_data(root: Path, seed: int = 0, split_sizes: dict[str, int] = SPLIT_SIZES) -> None:
    """Write the demo dataset (see the module docstring) under root, deterministic in seed.

    split_sizes: scenes per split (tests write a smaller one).
    """
    root = Path(root)
    for folder in ("images", "points", "labels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rows = []
    index = 0
    split_rng = np.random.default_rng([seed, 0])
    for split, size in split_sizes.items():
        anomalous = np.zeros(size, dtype=bool)
        anomalous[: round(ANOMALOUS_FRACTION * size)] = True
        split_rng.shuffle(anomalous)
        for is_anomalous in anomalous:
            scene_id = f"scene_{index:04d}"
            image, points, labels = make_scene(np.random.default_rng([seed, 1, index]), bool(is_anomalous))
            Image.fromarray(image).save(root / "images" / f"{scene_id}.png")
            if index % PLY_EVERY == PLY_EVERY - 1:
                points_name = f"points/{scene_id}.ply"
                write_ply_points(root / points_name, points, binary=(index // PLY_EVERY) % 2 == 0)
            else:
                points_name = f"points/{scene_id}.npy"
                np.save(root / points_name, points)
            np.save(root / "labels" / f"{scene_id}.npy", labels)
            rows.append([scene_id, f"images/{scene_id}.png", points_name, f"labels/{scene_id}.npy", split])
            index += 1
    with (root / CSV_MANIFEST).open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
