"""Synthetic humpback-whale fluke photos in the Kaggle whale-categorization-playground layout.

The real playground data are photo-ID pictures: a humpback lifts its tail as it dives and
the photographer, behind it, catches the underside of the fluke above the sea, usually with
a band of sky (sometimes a coastline) at the top.  Researchers tell individuals apart by
what does not change between encounters:

* the trailing edge (the upper edge, split by the central notch): its serrations, nicks
  and missing chunks, their positions and depths;
* the black/white pigmentation of the underside: how much is white, where the boundary
  between black and white runs, black spots on white and white spots on black;
* scars: parallel rake marks from orca teeth, single scratches, rings left by barnacles.

Here every individual is a random :class:`Individual` holding exactly those features in a
canonical frame (the notch at the origin, half-span 1, y pointing down).  A photo re-renders
the individual through a planar perspective pose (roll, yaw, pitch), places it in a freshly
rendered sea-and-sky scene, hides the tail stock below a waterline that moves with how far
the fluke is raised, and degrades the result (lighting, blur, noise, grayscale, JPEG) the
way real photos vary.  ``difficulty`` scales only the photo-to-photo variation of the
fluke; the scenery is drawn independently for every photo, so background never carries
identity.

The dataset imitates the playground's statistics as well: about half of the known
individuals have a single train image, the rest a long-tailed count; about 8% of train
images are ``new_whale`` (individuals seen once and never named); the test set mixes known
individuals, individuals absent from train (truth ``new_whale``) and near-duplicates of train
photos; about 11% of images are exactly 1050x600 and the rest have mixed sizes.

With ``scene_sites`` the photos are scenes instead, the trouble of animals photographed on
land or near a shore: each is taken at one of a few sites before that site's rocky shore
(`render_site`), the same in every photo taken there whoever is in front, the fluke a loose
crop, another animal at the edge of some. Background then carries no identity either, but it
repeats between individuals, so keypoints on it verify between different individuals' photos.

Everything is a pure function of ``seed``: the same call writes byte-identical files.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .files import write_bytes
from .ingest import NEW_WHALE

__all__ = [
    "EdgeProfile",
    "FlukeShape",
    "Pigmentation",
    "Scar",
    "Individual",
    "FlukeSprite",
    "PhotoSettings",
    "sample_individual",
    "draw_fluke",
    "sample_photo_settings",
    "render_photo",
    "render_site",
    "render_scene_photo",
    "generate_demo_dataset",
    "make_contact_sheet",
]

# Canonical frame: notch at (0, 0), lobe tips near x = +-1, y grows downwards (towards the
# water).  The sprite covers this box; nothing of the fluke is drawn outside it.
SPRITE_HALF_WIDTH = 1.08
SPRITE_TOP = 0.58
SPRITE_BOTTOM = 1.12

# The Kaggle images were mostly resized to 1050 px wide; this exact size is ~11% of them.
REFERENCE_SIZE = (1050, 600)
REFERENCE_SIZE_SHARE = 0.11
GRAYSCALE_SHARE = 0.15

# Streams of the generator tree below numpy.random.default_rng(seed); each consumer gets
# its own child so adding photos never perturbs the individuals and vice versa.
_STREAM_INDIVIDUAL = 1
_STREAM_PHOTO = 2
_STREAM_DUPLICATE = 3
_STREAM_SITE = 4
_STREAM_DECOY = 5
_STREAM_BACKDROP = 6


# --------------------------------------------------------------------------------------
# Individuals
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EdgeProfile:
    """The individual marks on one half of the trailing edge (t = 0 notch .. 1 tip)."""

    knots: np.ndarray  # t of the serration points, increasing, first/last are the ends
    point_heights: np.ndarray  # how far each point sticks out (up), canonical units
    dips: np.ndarray  # depth of the concave scallop between consecutive points
    nicks: np.ndarray  # (n, 3): t, depth, half-width of V-shaped cuts
    chunks: np.ndarray  # (n, 3): t, depth, half-width of flat-bottomed missing pieces


@dataclass(frozen=True, eq=False)
class FlukeShape:
    """Outline of the fluke in the canonical frame."""

    tip_raise: float  # how far above the notch the tips sweep
    tip_power: float  # >1: the edge stays low near the notch, then rises to the tips
    tip_asymmetry: float  # relative difference of the left and right tip raise
    bulge: float  # backward bow of the mid-lobe trailing edge
    chord: float  # lobe depth at the root (trailing to leading edge)
    chord_power: float  # how long the lobe stays broad before tapering to the tip
    notch_depth: float
    notch_width: float
    peduncle_width: float  # half-width of the tail stock where it meets the lobes
    left: EdgeProfile
    right: EdgeProfile


@dataclass(frozen=True, eq=False)
class Pigmentation:
    """Black/white pattern of the underside, resolution independent.

    Coarse random grids are stored rather than pixels so the same pattern can be drawn at
    any sprite size; spots are given in (x, chord fraction) so they stay on the lobes.
    """

    white_fraction: float
    symmetric_field: np.ndarray  # coarse grid, mirrored: humpback patterns are roughly symmetric
    asymmetric_field: np.ndarray  # coarse grid breaking the symmetry
    ragged_field: np.ndarray  # finer grid making the black/white boundary irregular
    mottle_field: np.ndarray  # fine grid: skin is never a flat colour
    lobe_centre: tuple[float, float]  # (|x|, chord fraction) of the white area's centre
    lobe_radius: tuple[float, float]  # (along span, along chord)
    lobe_weight: float
    trailing_margin: tuple[float, float]  # (width, strength) of the dark trailing rim
    leading_margin: tuple[float, float]  # (width, strength) of the dark leading rim
    midline_strength: float  # dark streak running from the notch to the tail stock
    spots: np.ndarray  # (n, 6): x, chord fraction, rx, ry, angle_deg, is_dark


@dataclass(frozen=True, eq=False)
class Scar:
    """A scratch or rake line, or a barnacle ring, in canonical units."""

    points: np.ndarray  # a polyline, or for a ring [[cx, cy], [radius, 0]]
    width: float
    lightness: float  # 0..1: scars heal pale grey/white
    is_ring: bool = False


@dataclass(frozen=True, eq=False)
class Individual:
    """Everything that stays the same in every photo of one whale."""

    whale_id: str
    shape: FlukeShape
    pigmentation: Pigmentation
    scars: tuple[Scar, ...]
    dark_tone: tuple[float, float, float]  # BGR in 0..1
    light_tone: tuple[float, float, float]


def _sample_edge_profile(rng: np.random.Generator) -> EdgeProfile:
    n_points = int(rng.integers(4, 12))
    inner = np.sort(rng.uniform(0.1, 0.96, n_points))
    knots = np.concatenate([[0.05], inner, [1.0]])
    heights = rng.uniform(0.0, 0.03, knots.size) * rng.uniform(0.3, 1.0)
    heights[0] = heights[-1] = 0.0
    seg = np.diff(knots)
    dips = seg * rng.uniform(0.05, 0.3, seg.size) + rng.uniform(0.0, 0.01, seg.size)
    n_nicks = min(int(rng.poisson(1.4)), 4)
    nicks = np.column_stack(
        [rng.uniform(0.12, 0.9, n_nicks), rng.uniform(0.03, 0.1, n_nicks), rng.uniform(0.008, 0.03, n_nicks)]
    )
    n_chunks = int(rng.random() < 0.2)
    chunks = np.column_stack(
        [rng.uniform(0.25, 0.8, n_chunks), rng.uniform(0.03, 0.08, n_chunks), rng.uniform(0.04, 0.09, n_chunks)]
    )
    return EdgeProfile(knots, heights, dips, nicks.reshape(-1, 3), chunks.reshape(-1, 3))


def _sample_shape(rng: np.random.Generator) -> FlukeShape:
    return FlukeShape(
        tip_raise=float(rng.uniform(0.04, 0.26)),
        tip_power=float(rng.uniform(1.3, 2.6)),
        tip_asymmetry=float(rng.uniform(-0.15, 0.15)),
        bulge=float(rng.uniform(-0.04, 0.07)),
        chord=float(rng.uniform(0.32, 0.46)),
        chord_power=float(rng.uniform(1.8, 3.2)),
        notch_depth=float(rng.uniform(0.05, 0.13)),
        notch_width=float(rng.uniform(0.025, 0.06)),
        peduncle_width=float(rng.uniform(0.075, 0.11)),
        left=_sample_edge_profile(rng),
        right=_sample_edge_profile(rng),
    )


def _sample_pigmentation(rng: np.random.Generator) -> Pigmentation:
    n_spots = int(rng.integers(3, 22))
    spots = np.column_stack(
        [
            rng.uniform(-0.92, 0.92, n_spots),
            rng.uniform(0.12, 0.85, n_spots),
            rng.uniform(0.008, 0.05, n_spots),
            rng.uniform(0.006, 0.035, n_spots),
            rng.uniform(0.0, 180.0, n_spots),
            (rng.random(n_spots) < 0.6).astype(float),
        ]
    )
    return Pigmentation(
        # Humpback undersides range from all black to all white (photo-ID "types" 1-5).
        white_fraction=float(rng.uniform(0.05, 0.9)),
        symmetric_field=rng.standard_normal((5, 9)),
        asymmetric_field=rng.standard_normal((6, 11)),
        ragged_field=rng.standard_normal((26, 52)),
        mottle_field=rng.standard_normal((80, 160)),
        lobe_centre=(float(rng.uniform(0.3, 0.65)), float(rng.uniform(0.3, 0.6))),
        lobe_radius=(float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.25, 0.6))),
        lobe_weight=float(rng.uniform(0.3, 1.4)),
        trailing_margin=(float(rng.uniform(0.015, 0.07)), float(rng.uniform(0.0, 1.6))),
        leading_margin=(float(rng.uniform(0.02, 0.1)), float(rng.uniform(0.3, 1.8))),
        midline_strength=float(rng.uniform(0.0, 1.5)),
        spots=spots,
    )


def _lobe_point(shape: FlukeShape, x: float, chord_fraction: float) -> tuple[float, float]:
    trail, lead = _base_edges(shape, np.array([x]))
    return x, float(trail[0] + chord_fraction * (lead[0] - trail[0]))


def _random_lobe_point(rng: np.random.Generator, shape: FlukeShape, span: tuple[float, float]) -> np.ndarray:
    """A point on a random lobe, |x| in span, somewhere between the trailing and leading edge."""
    x = float(rng.choice([-1.0, 1.0]) * rng.uniform(*span))
    return np.array(_lobe_point(shape, x, float(rng.uniform(0.2, 0.75))))


def _rake_marks(rng: np.random.Generator, shape: FlukeShape) -> list[Scar]:
    """Orca tooth rakes: 2-4 parallel, slightly curved lines from one bite."""
    marks: list[Scar] = []
    for _ in range(int(rng.poisson(1.1))):
        start = _random_lobe_point(rng, shape, (0.15, 0.8))
        angle = rng.uniform(0, math.pi)
        direction = np.array([math.cos(angle), math.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        length, spacing, bend = rng.uniform(0.1, 0.3), rng.uniform(0.018, 0.035), rng.uniform(-0.03, 0.03)
        lightness = float(rng.uniform(0.6, 0.9))
        for k in range(int(rng.integers(2, 5))):
            along = np.linspace(-0.5, 0.5, 12)[:, None]
            pts = start + along * length * rng.uniform(0.75, 1.0) * direction
            pts = pts + (k * spacing + bend * (1 - (2 * along) ** 2)) * normal
            marks.append(Scar(pts, float(rng.uniform(0.006, 0.011)), lightness))
    return marks


def _scratches(rng: np.random.Generator, shape: FlukeShape) -> list[Scar]:
    """Single healed scratches, gently curved."""
    marks: list[Scar] = []
    for _ in range(int(rng.poisson(0.9))):
        centre = _random_lobe_point(rng, shape, (0.05, 0.85))
        angle = rng.uniform(0, math.pi)
        along = np.linspace(-0.5, 0.5, 10)[:, None]
        pts = centre + along * rng.uniform(0.06, 0.25) * np.array([math.cos(angle), math.sin(angle)])
        pts[:, 1] += rng.uniform(-0.02, 0.02) * (1 - (2 * along[:, 0]) ** 2)
        marks.append(Scar(pts, float(rng.uniform(0.005, 0.01)), float(rng.uniform(0.55, 0.85))))
    return marks


def _barnacle_rings(rng: np.random.Generator, shape: FlukeShape) -> list[Scar]:
    """Rings left by barnacles, in clusters, mostly towards the tips."""
    marks: list[Scar] = []
    for _ in range(int(rng.poisson(1.0))):
        cluster = _random_lobe_point(rng, shape, (0.5, 0.92))
        for _ in range(int(rng.integers(3, 9))):
            centre = cluster + rng.normal(0, 0.025, 2)
            radius = float(rng.uniform(0.008, 0.016))
            marks.append(Scar(np.array([centre, [radius, 0.0]]), radius * 0.5, 0.85, is_ring=True))
    return marks


def sample_individual(rng: np.random.Generator, whale_id: str) -> Individual:
    """Draw a new whale: outline, trailing-edge marks, pigmentation, scars and skin tones."""
    shape = _sample_shape(rng)
    pigmentation = _sample_pigmentation(rng)
    scars = tuple(_rake_marks(rng, shape) + _scratches(rng, shape) + _barnacle_rings(rng, shape))
    dark = float(rng.uniform(0.07, 0.2))
    light = float(rng.uniform(0.8, 0.96))
    return Individual(
        whale_id=whale_id,
        shape=shape,
        pigmentation=pigmentation,
        scars=scars,
        dark_tone=(dark * 1.12, dark * 1.04, dark),
        light_tone=(light, light * 0.99, light * 0.96),
    )


# --------------------------------------------------------------------------------------
# Fluke geometry
# --------------------------------------------------------------------------------------


def _base_edges(shape: FlukeShape, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth trailing and leading edge heights (no individual marks) at signed x."""
    t = np.clip(np.abs(x), 0.0, 1.0)
    raise_ = shape.tip_raise * (1.0 + np.where(x < 0, -1.0, 1.0) * shape.tip_asymmetry)
    trail = (
        -raise_ * t**shape.tip_power
        - shape.bulge * np.sin(np.pi * t)
        + shape.notch_depth * np.exp(-((t / shape.notch_width) ** 1.2))
    )
    chord = shape.chord * np.clip(1.0 - t**shape.chord_power, 0.0, 1.0) ** 0.75
    return trail, trail + chord


def _edge_marks(profile: EdgeProfile, t: np.ndarray) -> np.ndarray:
    """Vertical offset of the trailing edge due to serrations, nicks and chunks (down = +)."""
    seg = np.clip(np.searchsorted(profile.knots, t, side="right") - 1, 0, profile.knots.size - 2)
    k0, k1 = profile.knots[seg], profile.knots[seg + 1]
    u = np.clip((t - k0) / (k1 - k0), 0.0, 1.0)
    points = profile.point_heights[seg] * (1 - u) + profile.point_heights[seg + 1] * u
    # Exponent < 1 keeps the serration points sharp while the scallops stay rounded.
    offset = -points + profile.dips[seg] * np.sin(np.pi * u) ** 0.6
    offset = np.where(t < profile.knots[0], 0.0, offset)
    for centre, depth, half_width in profile.nicks:
        offset += depth * np.clip(1.0 - np.abs(t - centre) / half_width, 0.0, 1.0) ** 1.5
    for centre, depth, half_width in profile.chunks:
        offset += depth / (1.0 + np.exp((np.abs(t - centre) - half_width) / 0.006))
    # Marks fade at the very tip so they cannot cut the lobe off.
    return offset * np.clip((1.0 - t) / 0.06, 0.0, 1.0)


def trailing_edge(shape: FlukeShape, x: np.ndarray) -> np.ndarray:
    """Trailing edge height at signed x, including the individual's marks."""
    trail, lead = _base_edges(shape, x)
    t = np.abs(x)
    marks = np.where(x < 0, _edge_marks(shape.left, t), _edge_marks(shape.right, t))
    # A cut never goes deeper than most of the lobe.
    return np.minimum(trail + marks, trail + 0.75 * (lead - trail))


def _lower_side(shape: FlukeShape, sign: float, n_points: int) -> np.ndarray:
    """Leading edge from the tip to the root, then down the tail stock; sign picks the side."""
    root, fillet = shape.peduncle_width, 0.16
    t_lead = np.linspace(1.0, root + fillet, n_points)
    lead = np.column_stack([t_lead, _base_edges(shape, sign * t_lead)[1]])
    # The leading edge curves smoothly into the tail stock (quadratic Bezier).
    y_root = float(_base_edges(shape, np.array([sign * root]))[1][0])
    p0, p1, p2 = lead[-1], np.array([root, y_root]), np.array([root, y_root + 0.6 * fillet])
    s = np.linspace(0, 1, 12)[1:, None]
    curve = (1 - s) ** 2 * p0 + 2 * (1 - s) * s * p1 + s**2 * p2
    stock_y = np.linspace(p2[1], SPRITE_BOTTOM, 8)[1:]
    # The tail stock thickens below the surface.
    stock = np.column_stack([p2[0] + 0.05 * (stock_y - p2[1]), stock_y])
    return np.vstack([lead, curve, stock]) * np.array([sign, 1.0])


def fluke_outline(shape: FlukeShape, points_per_side: int = 500) -> np.ndarray:
    """Closed polygon (canonical units) of the lobes plus the tail stock down to SPRITE_BOTTOM."""
    t = np.linspace(0.0, 1.0, points_per_side)
    trail_left = np.column_stack([-t[::-1], trailing_edge(shape, -t[::-1])])
    trail_right = np.column_stack([t[1:], trailing_edge(shape, t[1:])])
    right_lower = _lower_side(shape, 1.0, points_per_side // 3)
    left_lower = _lower_side(shape, -1.0, points_per_side // 3)[::-1]
    return np.vstack([trail_left, trail_right, right_lower, left_lower])


# --------------------------------------------------------------------------------------
# Drawing an individual
# --------------------------------------------------------------------------------------


def _sprite_pixels(pts: np.ndarray, px_per_unit: float) -> np.ndarray:
    """Canonical units -> sprite pixel coordinates."""
    return (np.asarray(pts, dtype=np.float64) + np.array([SPRITE_HALF_WIDTH, SPRITE_TOP])) * px_per_unit


@dataclass(frozen=True, eq=False)
class FlukeSprite:
    """An individual drawn once in the canonical frame, ready to be posed in photos."""

    colour: np.ndarray  # (h, w, 3) float32 BGR in 0..1
    alpha: np.ndarray  # (h, w) float32
    px_per_unit: float

    def to_pixels(self, pts: np.ndarray) -> np.ndarray:
        return _sprite_pixels(pts, self.px_per_unit)


def _upsampled(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """Smooth random field: a coarse grid of N(0, 1) values, cubic-upsampled and re-standardised."""
    field = cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def _whiteness(ind: Individual, xs: np.ndarray, ys: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Soft white mask (0 black .. 1 white) of the underside over the sprite grid."""
    shape, pig = ind.shape, ind.pigmentation
    height, width = ys.size, xs.size
    trail, lead = _base_edges(shape, xs)
    chord = np.maximum(lead - trail, 1e-3)
    frac = (ys[:, None] - trail[None, :]) / chord[None, :]
    ax = np.abs(xs)[None, :]

    sym = _upsampled(pig.symmetric_field, width, height)
    sym = 0.5 * (sym + sym[:, ::-1])
    field = 0.9 * sym + 0.5 * _upsampled(pig.asymmetric_field, width, height)
    (cx, cf), (rx, rf) = pig.lobe_centre, pig.lobe_radius
    field += pig.lobe_weight * 2.0 * np.exp(-(((ax - cx) / rx) ** 2) - ((frac - cf) / rf) ** 2)
    depth_below_trail = np.maximum(frac * chord[None, :], 0.0)
    field -= pig.trailing_margin[1] * 2.0 * np.exp(-depth_below_trail / pig.trailing_margin[0])
    depth_above_lead = np.maximum((1 - frac) * chord[None, :], 0)
    field -= pig.leading_margin[1] * 2.0 * np.exp(-depth_above_lead / pig.leading_margin[0])
    field -= pig.midline_strength * 2.0 * np.exp(-((ax / 0.07) ** 2))
    field += 0.35 * _upsampled(pig.ragged_field, width, height)

    # Threshold at the quantile that gives this whale its share of white; a strided sample
    # finds it to well under the soft-edge width, far faster than the full sort.
    lobe = inside & (frac < 1.0)
    threshold = float(np.quantile(field[lobe][::5], 1.0 - pig.white_fraction)) if lobe.any() else 0.0
    white = np.clip((field - threshold) / 0.12 + 0.5, 0.0, 1.0)
    # The tail stock is dark whatever the lobes look like.
    return white * np.clip((1.12 - frac) / 0.12, 0.0, 1.0)


def _draw_spots(ind: Individual, size: tuple[int, int], s: float) -> tuple[np.ndarray, np.ndarray]:
    """Black spots (on white) and white spots (on black) as two soft masks."""
    dark = np.zeros(size, np.uint8)
    light = np.zeros(size, np.uint8)
    for x, f, rx, ry, angle, is_dark in ind.pigmentation.spots:
        cx, cy = _sprite_pixels(np.array(_lobe_point(ind.shape, float(x), float(f))), s)
        axes = (max(1, int(round(rx * s))), max(1, int(round(ry * s))))
        centre = (int(round(cx)), int(round(cy)))
        cv2.ellipse(dark if is_dark else light, centre, axes, float(angle), 0, 360, 255, -1, cv2.LINE_AA)
    return dark.astype(np.float32) / 255.0, light.astype(np.float32) / 255.0


def _draw_scars(ind: Individual, size: tuple[int, int], s: float) -> tuple[np.ndarray, np.ndarray]:
    """Coverage (0..1) of the scars and their lightness where they lie."""
    cover = np.zeros(size, np.uint8)
    tone = np.zeros(size, np.uint8)
    for scar in ind.scars:
        thickness = max(1, int(round(scar.width * s)))
        lightness = int(round(255 * scar.lightness))
        if scar.is_ring:
            cx, cy = _sprite_pixels(scar.points[0], s)
            radius = max(1, int(round(scar.points[1][0] * s)))
            for layer, value in [(cover, 255), (tone, lightness)]:
                cv2.circle(layer, (int(round(cx)), int(round(cy))), radius, value, thickness, cv2.LINE_AA)
        else:
            pts = np.round(_sprite_pixels(scar.points, s) * 16).astype(np.int32)
            for layer, value in [(cover, 255), (tone, lightness)]:
                cv2.polylines(layer, [pts], False, value, thickness, cv2.LINE_AA, shift=4)
    cover_f = cover.astype(np.float32) / 255.0
    # Anti-aliased edges scale the tone too; divide it back out where the scar is faint.
    tone_f = tone.astype(np.float32) / 255.0 / np.maximum(cover_f, 1e-3)
    return cover_f, np.clip(tone_f, 0.0, 1.0)


def draw_fluke(ind: Individual, px_per_unit: float) -> FlukeSprite:
    """Draw the underside of the individual's fluke, tail stock included, in the canonical frame."""
    s = float(px_per_unit)
    width = int(round(2 * SPRITE_HALF_WIDTH * s))
    height = int(round((SPRITE_TOP + SPRITE_BOTTOM) * s))

    mask = np.zeros((height, width), np.uint8)
    outline = np.round(_sprite_pixels(fluke_outline(ind.shape), s) * 16).astype(np.int32)
    cv2.fillPoly(mask, [outline], 255, cv2.LINE_AA, shift=4)
    alpha = mask.astype(np.float32) / 255.0

    xs = (np.arange(width, dtype=np.float32) + 0.5) / s - SPRITE_HALF_WIDTH
    ys = (np.arange(height, dtype=np.float32) + 0.5) / s - SPRITE_TOP
    white = _whiteness(ind, xs, ys, alpha > 0.5)
    dark_spots, light_spots = _draw_spots(ind, (height, width), s)
    white = np.maximum(np.minimum(white, 1.0 - dark_spots), light_spots * (white < 0.5))
    white = np.clip(cv2.GaussianBlur(white.astype(np.float32), (0, 0), max(0.4, 0.0025 * s)), 0, 1)

    dark_tone = np.array(ind.dark_tone, np.float32)
    light_tone = np.array(ind.light_tone, np.float32)
    colour = dark_tone * (1.0 - white[..., None]) + light_tone * white[..., None]
    mottle = _upsampled(ind.pigmentation.mottle_field, width, height)
    colour = colour * (1.0 + 0.02 * mottle)[..., None]
    cover, tone = _draw_scars(ind, (height, width), s)
    # Scars heal pale: light on black skin, a little grey on white skin.
    scar_value = (tone - 0.3 * white)[..., None]
    colour = colour * (1 - cover[..., None]) + scar_value * cover[..., None]

    # Rounded body: darker towards the outline and the lower part, so the fluke reads as 3-D.
    rim = cv2.GaussianBlur(alpha, (0, 0), 0.02 * s)
    shading = 0.78 + 0.22 * np.clip(rim * 1.6 - 0.4, 0, 1)
    shading = shading * (1.05 - 0.12 * np.clip(ys[:, None] / 0.6, 0, 1))
    colour = colour * shading[..., None]
    return FlukeSprite(colour.astype(np.float32), alpha, s)


# --------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoSettings:
    """How one photo of a fluke was taken."""

    width: int
    height: int
    roll_deg: float  # camera roll: the horizon tilts with the fluke
    tilt_deg: float  # extra rotation of the fluke alone
    yaw_deg: float  # the whale not quite facing away: one lobe foreshortened
    pitch: float  # vertical foreshortening of the raised fluke (1: facing the camera)
    half_span_px: float
    notch_xy: tuple[float, float]
    waterline: float  # canonical y where the tail stock enters the water (lower: fluke raised less)
    horizon_frac: float
    fluke_gain: float
    shadow: float
    shadow_angle: float
    sheen: float  # strength of the wet glare on the fluke
    sheen_xy: tuple[float, float]  # where the glare sits, in half-spans from the notch
    contrast: float
    gamma: float
    colour_gain: tuple[float, float, float]
    blur_sigma: float
    noise_sigma: float
    water_streams: int
    grayscale: bool
    jpeg_quality: int


def sample_photo_settings(
    rng: np.random.Generator, width: int, height: int, difficulty: float
) -> PhotoSettings:
    """Pose, framing, light and degradation of one photo; difficulty scales the fluke's variation."""
    v = float(difficulty)
    frame = min(width, 1.75 * height)
    half_span = 0.4 * frame * math.exp(rng.normal(0.0, 0.15 * v))
    half_span = float(np.clip(half_span, 0.2 * frame, 0.47 * frame))
    waterline = 0.52 + rng.uniform(-0.22, 0.3) * v
    # Vertically centre the part of the fluke above water, then jitter.
    top, bottom = -0.45 * half_span, waterline * half_span
    notch_y = 0.52 * height - 0.5 * (top + bottom) + rng.uniform(-0.08, 0.08) * v * height
    notch_x = 0.5 * width + rng.uniform(-0.1, 0.1) * v * width
    waterline_y = notch_y + bottom
    horizon_frac = float(rng.uniform(0.06, 0.32))
    horizon_frac = float(np.clip(horizon_frac, 0.03, max(0.03, waterline_y / height - 0.12)))
    scale = max(width, height) / REFERENCE_SIZE[0]
    return PhotoSettings(
        width=int(width),
        height=int(height),
        roll_deg=float(rng.uniform(-12.0, 12.0) * v),
        tilt_deg=float(rng.uniform(-3.0, 3.0) * v),
        yaw_deg=float(rng.uniform(-30.0, 30.0) * v),
        pitch=float(1.0 - rng.uniform(0.0, 0.3) * v),
        half_span_px=half_span,
        notch_xy=(float(notch_x), float(notch_y)),
        waterline=float(waterline),
        horizon_frac=horizon_frac,
        fluke_gain=float(math.exp(rng.normal(0.0, 0.18 * v))),
        shadow=float(rng.uniform(0.0, 0.45) * v),
        shadow_angle=float(rng.uniform(0, 2 * math.pi)),
        sheen=float(rng.uniform(0.0, 0.08 + 0.25 * v)),
        sheen_xy=(float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.2, 0.3))),
        contrast=float(math.exp(rng.normal(0.0, 0.12 * v))),
        gamma=float(math.exp(rng.normal(0.0, 0.15 * v))),
        colour_gain=tuple(float(g) for g in 1.0 + rng.normal(0.0, 0.04 * v, 3)),
        blur_sigma=float((0.3 + rng.uniform(0.0, 1.6) * v) * scale),
        noise_sigma=float((1.0 + rng.uniform(0.0, 6.0) * v) / 255.0),
        water_streams=int(rng.poisson(0.3 + 2.0 * v)),
        grayscale=bool(rng.random() < GRAYSCALE_SHARE),
        jpeg_quality=int(rng.integers(60, 96)),
    )


def _pose_points(settings: PhotoSettings, pts: np.ndarray) -> np.ndarray:
    """Canonical points -> image pixels: yaw/pitch as a plane seen in perspective, then roll."""
    pts = np.asarray(pts, dtype=np.float64)
    yaw = math.radians(settings.yaw_deg)
    x3 = pts[:, 0] * math.cos(yaw)
    z3 = pts[:, 0] * math.sin(yaw)
    y3 = pts[:, 1] * settings.pitch
    # Camera a few half-spans away: mild perspective, the far lobe looks shorter.
    distance = 5.0
    perspective = distance / (distance + z3)
    x2, y2 = x3 * perspective, y3 * perspective
    angle = math.radians(settings.roll_deg + settings.tilt_deg)
    c, s = math.cos(angle), math.sin(angle)
    xr, yr = c * x2 - s * y2, s * x2 + c * y2
    return np.column_stack([xr, yr]) * settings.half_span_px + np.array(settings.notch_xy)


def _level_coordinates(
    settings: PhotoSettings, box: tuple[int, int, int, int], step: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution pixel coordinates of a box, in the un-rolled frame (rows = world-horizontal).

    ``step`` > 1 samples the box coarsely, for layers rendered at reduced resolution.
    """
    x0, y0, x1, y1 = box
    nx, ny = max(1, int(round((x1 - x0) / step))), max(1, int(round((y1 - y0) / step)))
    xs = (x0 + (np.arange(nx, dtype=np.float32) + 0.5) * ((x1 - x0) / nx) - 0.5)[None, :]
    ys = (y0 + (np.arange(ny, dtype=np.float32) + 0.5) * ((y1 - y0) / ny) - 0.5)[:, None]
    cx, cy = settings.width / 2.0, settings.height / 2.0
    a = math.radians(settings.roll_deg)
    c, s = np.float32(math.cos(a)), np.float32(math.sin(a))
    xl = c * (xs - cx) + s * (ys - cy)
    yl = -s * (xs - cx) + c * (ys - cy) + cy
    return xl, yl


def _to_level(settings: PhotoSettings, xy: np.ndarray) -> tuple[float, float]:
    a = math.radians(settings.roll_deg)
    c, s = math.cos(a), math.sin(a)
    dx, dy = xy[0] - settings.width / 2.0, xy[1] - settings.height / 2.0
    return float(c * dx + s * dy), float(-s * dx + c * dy + settings.height / 2.0)


def _periodic_waves(rng: np.random.Generator, n: int, anisotropy: float, peak: float) -> np.ndarray:
    """Tileable wave-height field: band-pass noise, crests elongated along x."""
    ky = np.fft.fftfreq(n)[:, None] * n
    kx = np.fft.rfftfreq(n)[None, :] * n
    k = np.sqrt((kx * anisotropy) ** 2 + ky**2)
    amplitude = np.exp(-(((np.log(k + 1e-9) - math.log(peak)) / 0.6) ** 2))
    spectrum = (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) * amplitude
    field = np.fft.irfft2(spectrum, s=(n, n))
    return ((field - field.mean()) / (field.std() + 1e-9)).astype(np.float32)


_SEA_COLOURS = np.array(
    [
        [0.42, 0.25, 0.08],  # deep blue
        [0.28, 0.17, 0.07],  # dark navy
        [0.42, 0.38, 0.32],  # grey, overcast
        [0.36, 0.36, 0.17],  # green-teal coastal water
        [0.2, 0.19, 0.16],  # dark slate
        [0.5, 0.4, 0.22],  # bright blue in sun
    ],
    np.float32,
)
_SKY_TOPS = np.array([[0.85, 0.6, 0.38], [0.78, 0.77, 0.75], [0.9, 0.75, 0.6], [0.62, 0.6, 0.58]], np.float32)

# Sky and sea are smooth at the pixel scale; rendering them at this size and upsampling
# keeps a 1050 px photo cheap.
_BACKGROUND_WORK_SIDE = 480


def render_background(rng: np.random.Generator, settings: PhotoSettings) -> np.ndarray:
    """Sky band on top, then a sea in perspective with waves, glints and whitecaps (float BGR)."""
    w, h = settings.width, settings.height
    step = max(1.0, max(w, h) / _BACKGROUND_WORK_SIDE)
    xl, yl = _level_coordinates(settings, (0, 0, w, h), step)
    horizon = settings.horizon_frac * h

    sky_top = _SKY_TOPS[rng.integers(len(_SKY_TOPS))] * np.float32(rng.uniform(0.9, 1.08))
    haze = np.clip(sky_top * 0.35 + np.float32(rng.uniform(0.6, 0.72)), 0, 1)
    sea_colour = _SEA_COLOURS[rng.integers(len(_SEA_COLOURS))] * rng.uniform(0.8, 1.15, 3).astype(np.float32)
    work_h, work_w = yl.shape[0], xl.shape[1]

    # Sky: gradient to a hazy horizon, soft clouds.
    t = (np.clip(yl / max(horizon, 1.0), 0.0, 1.0) ** 0.6)[..., None]
    sky = sky_top * (1 - t) + haze * t
    clouds = _upsampled(rng.standard_normal((4, 7)), work_w, work_h) + 0.5 * _upsampled(
        rng.standard_normal((9, 15)), work_w, work_h
    )
    cloud_cover = np.clip((clouds - rng.uniform(-0.5, 1.8)) / 1.2, 0, 1)[..., None] * np.float32(rng.uniform(0.3, 0.9))
    sky = sky * (1 - cloud_cover) + np.float32(rng.uniform(0.8, 0.97)) * cloud_cover
    if rng.random() < 0.25:
        sky = _add_coastline(rng, sky, xl, yl, horizon, h, haze)

    # Sea: a tileable wave field projected onto a ground plane seen from a boat.
    depth = np.maximum(yl - horizon, 0.0) / h + np.float32(0.003)
    wave_scale = rng.uniform(100, 240)
    n = 256
    u = np.mod(xl / h / depth * np.float32(wave_scale * rng.uniform(0.35, 0.6)), n)
    v = np.mod(np.float32(wave_scale) / depth, n)
    u, v = np.broadcast_arrays(u, v)
    heights = _periodic_waves(rng, n, rng.uniform(1.5, 4.0), rng.uniform(5, 12))
    # Facets tilted towards the sky are brighter: shade by the slope along the view.
    slope = np.roll(heights, -1, axis=0) - np.roll(heights, 1, axis=0)
    slope /= slope.std() + 1e-9
    ripples = _periodic_waves(rng, n, rng.uniform(1.0, 2.0), rng.uniform(20, 40))
    texture = np.dstack([0.4 * heights + 0.8 * slope + 0.35 * ripples, _periodic_waves(rng, n, 1.5, 5.0)])
    u, v = u.astype(np.float32), v.astype(np.float32)
    mapped = cv2.remap(texture, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    # Far waves are below the pixel size: fade them out instead of aliasing.
    fade = np.clip(depth / 0.12, 0.0, 1.0) ** 0.8
    shade = mapped[..., 0] * fade
    near = np.clip(depth / 0.6, 0.0, 1.0)[..., None]
    sea = sea_colour * (0.8 + 0.35 * near) * (1.0 + np.float32(rng.uniform(0.15, 0.3)) * shade[..., None])
    haze_weight = (np.exp(-depth / 0.05) * 0.85)[..., None]
    sea = sea * (1 - haze_weight) + haze * haze_weight

    sun_x = rng.uniform(-0.6, 0.6) * w
    sun = 0.25 + np.exp(-(((xl - sun_x) / (0.35 * w)) ** 2))
    glint = np.clip((shade - rng.uniform(1.8, 2.6)) * 2.0, 0.0, 1.0) * sun * np.float32(rng.uniform(0.3, 1.0))
    whitecaps = np.clip((mapped[..., 1] * fade - rng.uniform(2.2, 3.5)) * 1.5, 0.0, 0.9)
    foam = np.clip(glint + whitecaps, 0.0, 1.0)[..., None]
    sea = sea * (1 - foam) + np.float32(0.95) * foam

    is_sky = np.clip((horizon - yl) / step + 0.5, 0.0, 1.0)[..., None]
    background = (sky * is_sky + sea * (1 - is_sky)).astype(np.float32)
    if background.shape[:2] != (h, w):
        background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    return background


def _add_coastline(
    rng: np.random.Generator,
    sky: np.ndarray,
    xl: np.ndarray,
    yl: np.ndarray,
    horizon: float,
    h: int,
    haze: np.ndarray,
) -> np.ndarray:
    """Distant hills just above the horizon, hazy, as behind many whale-watching photos."""
    xl_row = np.broadcast_to(xl, yl.shape if yl.shape[1] == xl.shape[1] else (yl.shape[0], xl.shape[1]))
    profile_x = np.linspace(float(xl_row.min()), float(xl_row.max()), 64)
    profile = np.cumsum(rng.normal(0, 1, 64))
    profile = (profile - profile.min()) / (np.ptp(profile) + 1e-9)
    heights = np.interp(xl_row, profile_x, profile).astype(np.float32) * np.float32(rng.uniform(0.015, 0.06) * h)
    land_colour = np.array([0.3, 0.38, 0.33], np.float32) * np.float32(rng.uniform(0.6, 1.2)) * 0.6 + haze * 0.4
    land = np.clip((yl - (horizon - heights)) + 0.5, 0.0, 1.0)[..., None]
    return sky * (1 - land) + land_colour * land


def _warp_sprite(
    sprite: FlukeSprite, settings: PhotoSettings
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]] | None:
    """Pose the sprite into the photo; returns colour, alpha and the (x0, y0, x1, y1) box they cover."""
    corners = np.array(
        [
            [-SPRITE_HALF_WIDTH, -SPRITE_TOP],
            [SPRITE_HALF_WIDTH, -SPRITE_TOP],
            [SPRITE_HALF_WIDTH, SPRITE_BOTTOM],
            [-SPRITE_HALF_WIDTH, SPRITE_BOTTOM],
        ]
    )
    # Only the part above the waterline is ever visible: keep the box (and the work) to it.
    visible = corners.copy()
    visible[2:, 1] = min(SPRITE_BOTTOM, settings.waterline + 0.1)
    dst_visible = _pose_points(settings, visible)
    x0, y0 = (max(int(v), 0) for v in np.floor(dst_visible.min(axis=0)))
    x1, y1 = (int(v) + 1 for v in np.ceil(dst_visible.max(axis=0)))
    x1, y1 = min(x1, settings.width), min(y1, settings.height)
    if x1 <= x0 or y1 <= y0:
        return None
    colour, alpha = sprite.colour, sprite.alpha
    src = sprite.to_pixels(corners)
    # Shrink big sprites first: warpPerspective alone would alias the fine pattern and scars.
    shrink = settings.half_span_px / sprite.px_per_unit * 1.3
    if shrink < 0.8:
        size = (max(2, int(round(colour.shape[1] * shrink))), max(2, int(round(colour.shape[0] * shrink))))
        colour = cv2.resize(colour, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        src = src * np.array([size[0] / sprite.colour.shape[1], size[1] / sprite.colour.shape[0]])
    dst = _pose_points(settings, corners) - np.array([x0, y0])
    matrix = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    box = (x1 - x0, y1 - y0)
    warped_colour = cv2.warpPerspective(colour, matrix, box, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    warped_alpha = cv2.warpPerspective(alpha, matrix, box, flags=cv2.INTER_LINEAR, borderValue=0)
    return warped_colour, warped_alpha, (x0, y0, x1, y1)


def _water_streams(
    rng: np.random.Generator, settings: PhotoSettings, shape: FlukeShape, box: tuple[int, int, int, int]
) -> np.ndarray:
    """Sheets of water pouring off the trailing edge as the fluke rises; they hide some pattern."""
    x0, y0, x1, y1 = box
    layer = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for _ in range(settings.water_streams):
        x = float(rng.uniform(-0.85, 0.85))
        top = float(trailing_edge(shape, np.array([x]))[0])
        bottom = top + rng.uniform(0.15, 1.0) * (settings.waterline + 0.05 - top)
        ys = np.linspace(top + 0.01, bottom, 16)
        xs = x + np.cumsum(rng.normal(0, 0.004, ys.size))
        pts = np.round((_pose_points(settings, np.column_stack([xs, ys])) - np.array([x0, y0])) * 16).astype(np.int32)
        thickness = max(1, int(round(rng.uniform(0.005, 0.02) * settings.half_span_px)))
        shade = rng.uniform(80, 200)
        # Drawn piecewise, thinning out and breaking into drips as it falls.
        for k in range(ys.size - 1):
            if rng.random() < 0.25 * k / ys.size:
                continue
            value = int(shade * (1.0 - 0.6 * k / ys.size))
            cv2.line(layer, tuple(pts[k]), tuple(pts[k + 1]), value, thickness, cv2.LINE_AA, shift=4)
    streams = layer.astype(np.float32) / 255.0
    if settings.water_streams:
        streams = cv2.GaussianBlur(streams, (0, 0), max(0.5, 0.006 * settings.half_span_px))
    return streams


def _add_splash(
    rng: np.random.Generator, image: np.ndarray, settings: PhotoSettings, water: tuple[float, float]
) -> None:
    """White water churned up where the tail stock leaves the surface (in place)."""
    half = settings.half_span_px
    reach = np.array([0.9, 0.45]) * half
    water_xy = _pose_points(settings, np.array([[0.0, settings.waterline]]))[0]
    x0, y0 = (max(0, int(v)) for v in water_xy - reach)
    x1, y1 = int(min(settings.width, water_xy[0] + reach[0])), int(min(settings.height, water_xy[1] + reach[1]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    xl, yl = _level_coordinates(settings, (x0, y0, x1, y1))
    dx = (xl - water[0]) / (0.3 * half)
    # Centred a little above the surface: the splash climbs the tail stock.
    dy = (yl - water[1] + 0.02 * half) / (0.06 * half)
    envelope = np.exp(-(dx**2) - np.where(dy < 0, dy**2, dy**2 * 0.35))
    # Foam floats flat on the water, so in perspective its patches are wide and thin.
    height, width = y1 - y0, x1 - x0
    coarse = _blobs(rng, width, height, max(2.0, 0.05 * half), max(2.0, 0.02 * half))
    fine = _blobs(rng, width, height, max(1.5, 0.02 * half), max(1.5, 0.008 * half))
    froth = envelope * (np.float32(rng.uniform(0.8, 1.3)) + 0.5 * coarse + 0.35 * fine)
    splash = (np.clip((froth - 0.55) * 2.5, 0.0, 0.9) * np.clip(envelope * 3, 0, 1))[..., None]
    roi = image[y0:y1, x0:x1]
    roi[:] = roi * (1 - splash) + np.float32(0.93) * splash


def _blobs(rng: np.random.Generator, width: int, height: int, cell_w: float, cell_h: float) -> np.ndarray:
    """Smooth noise with features about cell_w x cell_h pixels."""
    grid = (max(3, int(height / cell_h)), max(3, int(width / cell_w)))
    return _upsampled(rng.standard_normal(grid), width, height)


def _draw_fluke_into(
    image: np.ndarray, sprite: FlukeSprite, settings: PhotoSettings, rng: np.random.Generator, shape: FlukeShape
) -> tuple[tuple[float, float], np.ndarray | None]:
    """Pose the fluke into `image` (float BGR, in place): where the water is (level frame), and
    how much the fluke covers each pixel (an image-sized alpha; None where it is out of frame)."""
    water = _to_level(settings, _pose_points(settings, np.array([[0.0, settings.waterline]]))[0])
    posed = _warp_sprite(sprite, settings)
    if posed is None:
        return water, None
    colour, alpha, box = posed
    x0, y0, x1, y1 = box
    xl, yl = _level_coordinates(settings, box)
    # The water surface hides the tail stock below the waterline, with a little ripple.
    wavelength = max(2.0, 0.05 * settings.half_span_px)
    ripple = np.sin(xl / wavelength + np.float32(rng.uniform(0, 6.3))) * np.float32(0.008 * settings.half_span_px)
    alpha = alpha * np.clip(water[1] + ripple - yl + 0.5, 0.0, 1.0)
    # Light on the fluke: exposure and a soft shadow sweeping across it.
    ramp = math.cos(settings.shadow_angle) * (xl - water[0]) + math.sin(settings.shadow_angle) * (yl - water[1])
    ramp = np.clip(0.5 + ramp / (2.2 * settings.half_span_px), 0.0, 1.0)
    gain = np.float32(settings.fluke_gain) * (1.0 - np.float32(settings.shadow) * ramp)
    colour = colour * cv2.merge([gain, gain, gain])
    # Wet skin catches a soft glare that lifts the blacks more than the whites.
    notch = _to_level(settings, np.array(settings.notch_xy))
    sx = notch[0] + settings.sheen_xy[0] * settings.half_span_px
    sy = notch[1] + settings.sheen_xy[1] * settings.half_span_px
    glare = np.exp(-((xl - sx) ** 2 + (yl - sy) ** 2) / np.float32(2 * (0.35 * settings.half_span_px) ** 2))
    glare = (glare * np.float32(settings.sheen))[..., None]
    colour = colour + (np.float32(0.85) - colour) * glare
    if settings.water_streams:
        streams = _water_streams(rng, settings, shape, box)
        colour = cv2.blendLinear(colour, np.full_like(colour, 0.9), 1.0 - streams, streams)
    roi = image[y0:y1, x0:x1]
    roi[:] = cv2.blendLinear(roi, colour, 1.0 - alpha, alpha)
    cover = np.zeros(image.shape[:2], np.float32)
    cover[y0:y1, x0:x1] = alpha
    return water, cover


def render_photo(
    sprite: FlukeSprite, settings: PhotoSettings, rng: np.random.Generator, shape: FlukeShape
) -> np.ndarray:
    """One photo of a fluke above the sea: uint8 BGR (h, w, 3), or (h, w) when grayscale.

    ``shape`` is the individual's outline, so that water pours off its actual trailing edge.
    """
    image = render_background(rng, settings)
    water, _ = _draw_fluke_into(image, sprite, settings, rng, shape)
    _add_splash(rng, image, settings, water)
    return _finish_photo(image, settings, rng)


# --------------------------------------------------------------------------------------
# Scenes: the animal before backgrounds that recur
# --------------------------------------------------------------------------------------

# In a scene photo the fluke spans this share of what it spans in a sea photo: a loose crop,
# most of the frame background.
SCENE_SPAN = 0.45
# Each site's backdrop is this much wider and taller than the largest photo, so that each
# photo frames a part of it, shifted as the boat drifts.
SITE_MARGIN = 1.3
# Photos with another animal (a decoy, in no catalogue) partly in frame.
DECOY_SHARE = 0.4


def render_site(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A rocky shore with vegetation seen from the sea at one place, uint8 BGR (height, width,
    3): boulders with lit tops, clumps of grass and scrub, speckled rock. Every
    photo taken there shows part of it, whichever animal is in front: its corners are the kind
    of keypoint that verifies between photos of different individuals."""
    base = np.array([0.42, 0.45, 0.47], np.float32) * rng.uniform(0.8, 1.15, 3).astype(np.float32)
    shade = _upsampled(rng.standard_normal((6, 9)), width, height)[..., None]
    image = np.clip(base * (1.0 + 0.12 * shade), 0, 1)
    image = (image * 255).astype(np.uint8)
    side = min(width, height)
    # boulders of about 0.0026 side^2 each, enough to cover the ground one and a half times
    for _ in range(int(1.5 * width * height / (0.0026 * side * side))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.uniform(0.01, 0.06) * side), int(rng.uniform(0.008, 0.04) * side))
        angle = float(rng.uniform(0, 180))
        tone = np.clip(base * rng.uniform(0.5, 1.3) * 255, 0, 255)
        cv2.ellipse(image, centre, axes, angle, 0, 360, tone.tolist(), -1, cv2.LINE_AA)
        # the lit top of the boulder
        lit = (centre[0] - axes[0] // 4, centre[1] - axes[1] // 3)
        cv2.ellipse(image, lit, (max(1, axes[0] // 2), max(1, axes[1] // 3)), angle, 0, 360,
                    np.clip(tone * 1.35, 0, 255).tolist(), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(8, 16))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        green = np.array([0.2, 0.42, 0.28]) * rng.uniform(0.5, 1.1) * 255
        for _ in range(int(rng.integers(40, 120))):
            x, y = cx + rng.normal(0, 0.03 * side), cy + rng.normal(0, 0.02 * side)
            length, angle = rng.uniform(0.005, 0.02) * side, rng.uniform(-2.2, -0.9)
            end = (int(x + length * math.cos(angle)), int(y + length * math.sin(angle)))
            cv2.line(image, (int(x), int(y)), end, (green * rng.uniform(0.7, 1.3)).tolist(),
                     max(1, int(0.002 * side)), cv2.LINE_AA)
    speckle = rng.standard_normal((height, width)).astype(np.float32) * 10
    image = np.clip(image.astype(np.float32) + speckle[..., None], 0, 255)
    return cv2.GaussianBlur(image, (0, 0), 0.6).astype(np.uint8)


def site_view(site: np.ndarray, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """The part of a `site` (uint8 BGR) one photo of `width` x `height` frames, float BGR in
    0..1: at the site's scale, shifted anywhere the site allows."""
    x0 = int(rng.integers(0, site.shape[1] - width + 1))
    y0 = int(rng.integers(0, site.shape[0] - height + 1))
    return site[y0:y0 + height, x0:x0 + width].astype(np.float32) / 255.0


def loose_crop(settings: PhotoSettings, rng: np.random.Generator) -> PhotoSettings:
    """A photo's settings with the fluke `SCENE_SPAN` as large, anywhere in the middle of the frame."""
    return replace(settings, half_span_px=settings.half_span_px * SCENE_SPAN,
                   notch_xy=(float(rng.uniform(0.3, 0.7) * settings.width),
                             float(rng.uniform(0.3, 0.6) * settings.height)))


def decoy_settings(settings: PhotoSettings, rng: np.random.Generator) -> PhotoSettings:
    """Where another animal shows in a photo: at its left or right edge, partly out of frame."""
    edge = float(rng.choice([-0.1, 1.1])) * settings.width
    return replace(settings, notch_xy=(edge, float(rng.uniform(0.3, 0.7) * settings.height)),
                   tilt_deg=float(rng.uniform(-10, 10)), water_streams=0)


def render_scene_photo(
    sprite: FlukeSprite, settings: PhotoSettings, rng: np.random.Generator, shape: FlukeShape,
    background: np.ndarray, decoy: tuple[FlukeSprite, PhotoSettings, FlukeShape] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One photo of a fluke before `background` (float BGR, `site_view`), with a `decoy`
    (sprite, settings, shape) behind it where given: the photo (as `render_photo`) and where
    the animal is, a uint8 mask (255 where the fluke covers at least half a pixel)."""
    image = background.copy()
    if decoy is not None:
        _draw_fluke_into(image, decoy[0], decoy[1], rng, decoy[2])
    water, cover = _draw_fluke_into(image, sprite, settings, rng, shape)
    _add_splash(rng, image, settings, water)
    mask = np.zeros(image.shape[:2], np.uint8) if cover is None else np.where(cover >= 0.5, 255, 0).astype(np.uint8)
    return _finish_photo(image, settings, rng), mask


def _finish_photo(image: np.ndarray, settings: PhotoSettings, rng: np.random.Generator) -> np.ndarray:
    """Camera response and degradations: blur, exposure curve, colour cast, sensor noise, 8 bits."""
    out = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if settings.blur_sigma > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), settings.blur_sigma)
    # Contrast, gamma and colour cast are per-value curves: one lookup table per channel.
    levels = np.arange(256, dtype=np.float64) / 255.0
    curve = np.clip((levels - 0.5) * settings.contrast + 0.5, 0.0, 1.0) ** settings.gamma
    lut = np.clip(np.outer(curve, settings.colour_gain) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = cv2.LUT(out, lut.reshape(1, 256, 3))
    # Luminance noise shared by the channels, like a sensor's after demosaicing.
    noise = rng.standard_normal(out.shape[:2], dtype=np.float32) * np.float32(settings.noise_sigma * 255.0)
    out = np.clip(out.astype(np.int16) + np.rint(noise).astype(np.int16)[..., None], 0, 255).astype(np.uint8)
    if settings.grayscale:
        out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    return out


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def near_duplicate(jpeg: bytes, rng: np.random.Generator, max_side: int) -> bytes:
    """The same photo again, as Kaggle had it: re-encoded, maybe resized or cropped by a few pixels."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
    h, w = image.shape[:2]
    if rng.random() < 0.6:
        margin = max(1, round(0.01 * max(h, w)))
        top, left = (int(x) for x in rng.integers(0, margin + 1, 2))
        bottom, right = (int(x) for x in rng.integers(0, margin + 1, 2))
        image = image[top : h - bottom, left : w - right]
    if rng.random() < 0.5:
        factor = min(rng.uniform(0.85, 1.1), max_side / max(image.shape[:2]))
        size = (max(8, int(round(image.shape[1] * factor))), max(8, int(round(image.shape[0] * factor))))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return encode_jpeg(image, int(rng.integers(60, 96)))


# --------------------------------------------------------------------------------------
# Dataset plan
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Photo:
    name: str
    split: str  # "train" or "test"
    individual: int  # index into the dataset's individuals
    label: str  # what the CSV says: a whale id or new_whale
    size: tuple[int, int]  # (width, height); unused for duplicates
    duplicate_of: int = -1  # index of the train photo this test photo re-encodes


def _unique_hex(rng: np.random.Generator, count: int, digits: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        for value in rng.integers(0, 16**digits, count - len(out) + 4):
            name = f"{int(value):0{digits}x}"
            if name not in taken and len(out) < count:
                taken.add(name)
                out.append(name)
    return out


def _sample_image_size(rng: np.random.Generator, max_side: int) -> tuple[int, int]:
    """Kaggle-like mixed sizes (not the reference 1050x600), scaled down when max_side < 1050."""
    top = max(REFERENCE_SIZE[0], max_side)
    kind = rng.random()
    if kind < 0.08:  # portrait
        height = int(rng.integers(400, top + 1))
        width = int(round(height * rng.uniform(0.6, 0.85)))
    elif kind < 0.14:  # square-ish
        width = int(rng.integers(300, top + 1))
        height = int(round(width * rng.uniform(0.9, 1.1)))
    else:
        width = int(rng.integers(300, top + 1)) if rng.random() < 0.55 else REFERENCE_SIZE[0]
        aspect = rng.choice([1.33, 1.5, 1.78, 2.0]) if rng.random() < 0.5 else rng.uniform(1.15, 2.3)
        height = int(round(width / aspect))
    width, height = min(width, top), min(height, top)
    return _fit_max_side((width, height), max_side)


def _fit_max_side(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    factor = min(1.0, max_side / REFERENCE_SIZE[0])
    width, height = size
    width, height = max(16, int(round(width * factor))), max(16, int(round(height * factor)))
    if max(width, height) > max_side:
        k = max_side / max(width, height)
        width, height = max(16, int(round(width * k))), max(16, int(round(height * k)))
    return width, height


def _long_tailed_counts(rng: np.random.Generator, n_individuals: int, n_images: int) -> np.ndarray:
    """Images per known individual: ~half singletons, the rest 2+ with a few frequent ones."""
    # With too few images for half to repeat, more individuals stay singletons.
    n_multi = min(n_individuals - int(round(0.5 * n_individuals)), n_images - n_individuals)
    counts = np.ones(n_individuals, dtype=int)
    if n_multi > 0:
        counts[:n_multi] = 2
        # Log-normal popularity: most repeat a few times, a few are photographed a lot.
        weights = np.exp(rng.normal(0.0, 0.8, n_multi))
        counts[:n_multi] += rng.multinomial(n_images - n_individuals - n_multi, weights / weights.sum())
    return counts[rng.permutation(n_individuals)]


@dataclass
class _Plan:
    ids: list[str]  # one per individual; new_whale extras and unseen ones get internal ids
    photos: list[_Photo]
    n_known: int
    n_unseen_individuals: int


def _plan_dataset(
    rng: np.random.Generator,
    n_individuals: int,
    n_train: int,
    n_test: int,
    new_whale_fraction: float,
    unseen_fraction: float,
    duplicate_fraction: float,
    max_side: int,
) -> _Plan:
    n_new_whale = int(round(new_whale_fraction * n_train))
    n_named = n_train - n_new_whale
    if n_named < n_individuals:
        raise ValueError(
            f"{n_train} train images minus {n_new_whale} new_whale cannot show {n_individuals} individuals"
        )
    n_dup = min(int(round(duplicate_fraction * n_test)), n_named)
    n_unseen = int(round(unseen_fraction * n_test))
    n_seen = n_test - n_dup - n_unseen
    if n_seen < 0:
        raise ValueError("unseen_test_fraction + duplicate_test_fraction must not exceed 1")

    counts = _long_tailed_counts(rng, n_individuals, n_named)
    # Unseen individuals appear once or twice in test.
    unseen_sizes: list[int] = []
    while sum(unseen_sizes) < n_unseen:
        unseen_sizes.append(min(1 + int(rng.random() < 0.3), n_unseen - sum(unseen_sizes)))

    n_total_individuals = n_individuals + n_new_whale + len(unseen_sizes)
    taken: set[str] = set()
    ids = ["w_" + h for h in _unique_hex(rng, n_total_individuals, 7, taken)]
    names = _unique_hex(rng, n_train + n_test, 8, set())
    name_iter = iter(names)

    train: list[tuple[int, str]] = []
    for ind, count in enumerate(counts):
        train += [(ind, ids[ind])] * int(count)
    train += [(n_individuals + k, NEW_WHALE) for k in range(n_new_whale)]
    train = [train[i] for i in rng.permutation(len(train))]

    test: list[tuple[int, str, int]] = []
    singletons = np.flatnonzero(counts == 1)
    multis = np.flatnonzero(counts >= 2)
    multi_weights = np.sqrt(counts[multis]) / np.sqrt(counts[multis]).sum() if multis.size else None
    for _ in range(n_seen):
        # Like the playground: mostly whales with several train photos, some singletons.
        use_singleton = singletons.size > 0 and (multis.size == 0 or rng.random() < 0.2)
        ind = int(rng.choice(singletons)) if use_singleton else int(rng.choice(multis, p=multi_weights))
        test.append((ind, ids[ind], -1))
    first_unseen = n_individuals + n_new_whale
    for k, size in enumerate(unseen_sizes):
        test += [(first_unseen + k, NEW_WHALE, -1)] * size
    named_train = [i for i, (_, label) in enumerate(train) if label != NEW_WHALE]
    for src in rng.choice(named_train, size=n_dup, replace=False):
        test.append((train[int(src)][0], train[int(src)][1], int(src)))
    test = [test[i] for i in rng.permutation(len(test))]

    # Exactly the reference share of rendered photos gets 1050x600 (duplicates inherit theirs).
    entries = [(ind, label, "train", -1) for ind, label in train] + [(i, lab, "test", d) for i, lab, d in test]
    rendered = [k for k, entry in enumerate(entries) if entry[3] < 0]
    n_reference = int(round(REFERENCE_SIZE_SHARE * len(rendered)))
    reference = set(rng.choice(rendered, size=n_reference, replace=False).tolist())
    photos: list[_Photo] = []
    for k, (ind, label, split, dup) in enumerate(entries):
        if dup >= 0:
            size = (0, 0)
        elif k in reference:
            size = _fit_max_side(REFERENCE_SIZE, max_side)
        else:
            size = _sample_image_size(rng, max_side)
        photos.append(_Photo(next(name_iter) + ".jpg", split, ind, label, size, dup))
    return _Plan(ids, photos, n_individuals, len(unseen_sizes))


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _csv_bytes(rows: list[tuple[str, str]], header: tuple[str, str] = ("Image", "Id")) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


@dataclass
class _Scenes:
    """The sites of a scene dataset (uint8 backdrops, `render_site`) and their decoys (one
    animal in no catalogue per site, drawn once), and which site each photo was taken at."""

    sites: list[np.ndarray]
    decoys: list[tuple[FlukeSprite, FlukeShape]]
    site_of: dict[str, int]

    @classmethod
    def make(cls, seed: int, n_sites: int, max_side: int, px_per_unit: float) -> "_Scenes":
        side = int(math.ceil(SITE_MARGIN * max_side))
        sites, decoys = [], []
        for k in range(n_sites):
            sites.append(render_site(_child_rng(seed, _STREAM_BACKDROP, k), side, side))
            decoy = sample_individual(_child_rng(seed, _STREAM_DECOY, k), f"decoy_{k}")
            decoys.append((draw_fluke(decoy, px_per_unit), decoy.shape))
        return cls(sites, decoys, {})

    def photo(self, out: Path, photo: "_Photo", site_rng: np.random.Generator, sprite: FlukeSprite,
              settings: PhotoSettings, rng: np.random.Generator, shape: FlukeShape) -> np.ndarray:
        """Render `photo` at a site drawn by `site_rng` and write its mask; the photo."""
        site = int(site_rng.integers(len(self.sites)))
        self.site_of[photo.name] = site
        settings = loose_crop(settings, site_rng)
        background = site_view(self.sites[site], site_rng, settings.width, settings.height)
        decoy = None
        if site_rng.random() < DECOY_SHARE:
            decoy_sprite, decoy_shape = self.decoys[site]
            decoy = (decoy_sprite, decoy_settings(settings, site_rng), decoy_shape)
        image, mask = render_scene_photo(sprite, settings, rng, shape, background, decoy)
        ok, png = cv2.imencode(".png", mask)
        if not ok:
            raise ValueError(f"could not encode the mask of {photo.name}")
        write_bytes(png.tobytes(), out / "masks" / photo.split / (Path(photo.name).stem + ".png"))
        return image


def _child_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, index)))


def generate_demo_dataset(
    out_dir: str | Path,
    *,
    n_individuals: int = 60,
    n_train_images: int = 300,
    n_test_images: int = 150,
    new_whale_train_fraction: float = 0.08,
    unseen_test_fraction: float = 0.3,
    duplicate_test_fraction: float = 0.05,
    difficulty: float = 0.5,
    max_side: int = 1050,
    scene_sites: int = 0,
    seed: int = 0,
) -> dict:
    """Write a Kaggle-playground-like dataset of fluke photos into ``out_dir``; return counts.

    Files: ``train/*.jpg``, ``test/*.jpg``, ``train.csv``, ``test_truth.csv`` and
    ``sample_submission.csv`` (all ``Image,Id``).  Files already in ``out_dir`` are left alone.

    With ``scene_sites`` > 0 the photos are scenes: each is taken at one of that many sites,
    before the site's shore (`render_site`), which recurs in every photo taken there whoever
    is in front; the fluke is a loose crop (`SCENE_SPAN`), and in `DECOY_SHARE` of the photos
    another animal shows at the edge. What the generator knows is written beside the data, for
    measuring, never for the workflow to read: ``scenes.csv`` (Image, site) and ``masks/<split>/
    <image>.png``, 255 where the animal is (near-duplicates of train photos have none).
    """
    if n_individuals < 1 or n_train_images < 1 or n_test_images < 0:
        raise ValueError("need at least one individual and one train image")
    for name, value in [
        ("new_whale_train_fraction", new_whale_train_fraction),
        ("unseen_test_fraction", unseen_test_fraction),
        ("duplicate_test_fraction", duplicate_test_fraction),
        ("difficulty", difficulty),
    ]:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if max_side < 32:
        raise ValueError("max_side must be at least 32")
    if scene_sites < 0:
        raise ValueError(f"scene_sites must be 0 (photos at sea) or more, got {scene_sites}")

    out = Path(out_dir)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "test").mkdir(parents=True, exist_ok=True)
    plan = _plan_dataset(
        np.random.default_rng(seed),
        n_individuals,
        n_train_images,
        n_test_images,
        new_whale_train_fraction,
        unseen_test_fraction,
        duplicate_test_fraction,
        max_side,
    )

    # One individual at a time so only one sprite is in memory.
    by_individual: dict[int, list[int]] = {}
    for index, photo in enumerate(plan.photos):
        if photo.duplicate_of < 0:
            by_individual.setdefault(photo.individual, []).append(index)
    px_per_unit = float(np.clip(0.32 * max_side, 40.0, 360.0))
    scenes = _Scenes.make(seed, scene_sites, max_side, px_per_unit) if scene_sites else None
    for ind_index in sorted(by_individual):
        individual = sample_individual(_child_rng(seed, _STREAM_INDIVIDUAL, ind_index), plan.ids[ind_index])
        sprite = draw_fluke(individual, px_per_unit)
        for index in by_individual[ind_index]:
            photo = plan.photos[index]
            rng = _child_rng(seed, _STREAM_PHOTO, index)
            settings = sample_photo_settings(rng, photo.size[0], photo.size[1], difficulty)
            if scenes is None:
                image = render_photo(sprite, settings, rng, individual.shape)
            else:
                image = scenes.photo(out, photo, _child_rng(seed, _STREAM_SITE, index), sprite, settings, rng,
                                     individual.shape)
            write_bytes(encode_jpeg(image, settings.jpeg_quality), out / photo.split / photo.name)
    if scenes is not None:
        write_bytes(_csv_bytes(sorted(scenes.site_of.items()), header=("Image", "site")), out / "scenes.csv")

    train_photos = [p for p in plan.photos if p.split == "train"]
    for index, photo in enumerate(plan.photos):
        if photo.duplicate_of >= 0:
            source = train_photos[photo.duplicate_of]
            source_bytes = (out / "train" / source.name).read_bytes()
            data = near_duplicate(source_bytes, _child_rng(seed, _STREAM_DUPLICATE, index), max_side)
            write_bytes(data, out / "test" / photo.name)

    test_photos = [p for p in plan.photos if p.split == "test"]
    train_rows = sorted((p.name, p.label) for p in train_photos)
    test_rows = sorted((p.name, p.label) for p in test_photos)
    frequency = Counter(label for _, label in train_rows if label != NEW_WHALE)
    top4 = [i for i, _ in sorted(frequency.items(), key=lambda kv: (-kv[1], kv[0]))[:4]]
    guess = " ".join([NEW_WHALE, *top4])
    write_bytes(_csv_bytes(train_rows), out / "train.csv")
    write_bytes(_csv_bytes(test_rows), out / "test_truth.csv")
    write_bytes(_csv_bytes([(name, guess) for name, _ in test_rows]), out / "sample_submission.csv")

    return {
        "individuals": plan.n_known,
        "train_images": len(train_rows),
        "test_images": len(test_rows),
        "singletons": sum(1 for c in frequency.values() if c == 1),
        "new_whale_train_images": sum(1 for _, label in train_rows if label == NEW_WHALE),
        "unseen_test_images": sum(1 for _, label in test_rows if label == NEW_WHALE),
        "unseen_test_individuals": plan.n_unseen_individuals,
        "duplicate_test_images": sum(1 for p in test_photos if p.duplicate_of >= 0),
    }


# --------------------------------------------------------------------------------------
# Contact sheet
# --------------------------------------------------------------------------------------


def _read_labels(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as fh:
        return [(row["Image"], row["Id"]) for row in csv.DictReader(fh)]


def _letterbox(image: np.ndarray, side: int) -> np.ndarray:
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h, w = image.shape[:2]
    k = side / max(h, w)
    size = (max(1, int(round(w * k))), max(1, int(round(h * k))))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    cell = np.full((side, side, 3), 40, np.uint8)
    y, x = (side - size[1]) // 2, (side - size[0]) // 2
    cell[y : y + size[1], x : x + size[0]] = small
    return cell


def _label_cell(whale: str, n_photos: int, side: int) -> np.ndarray:
    """The row header: the id, scaled to fit the cell, and the photo count under it."""
    cell = np.full((side, side, 3), 245, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.9 * side / cv2.getTextSize(whale, font, 1.0, 1)[0][0]
    left = int(0.05 * side)
    cv2.putText(cell, whale, (left, side // 2), font, scale, (0, 0, 0), max(1, int(scale * 1.5)), cv2.LINE_AA)
    below = side // 2 + int(40 * scale)
    cv2.putText(cell, f"{n_photos} photos", (left, below), font, scale * 0.8, (90, 90, 90), 1, cv2.LINE_AA)
    return cell


def make_contact_sheet(
    data_dir: str | Path,
    out_png: str | Path,
    *,
    n_individuals: int = 4,
    photos_per_individual: int = 4,
    thumb: int = 200,
) -> None:
    """PNG grid of the most photographed individuals: one row each, the id in a first column.

    The sheet is ``rows * thumb`` high and ``(1 + photos_per_individual) * thumb`` wide, where
    ``rows = min(n_individuals, known individuals)`` (one blank row if there are none);
    missing photos leave a dark cell.
    Individuals are ranked by photo count (train + test truth), ties by id.
    """
    data = Path(data_dir)
    photos: dict[str, list[Path]] = {}
    for split, csv_name in [("train", "train.csv"), ("test", "test_truth.csv")]:
        if not (data / csv_name).exists():
            continue
        for image, whale in sorted(_read_labels(data / csv_name)):
            if whale != NEW_WHALE:
                photos.setdefault(whale, []).append(data / split / image)
    ranked = sorted(photos, key=lambda whale: (-len(photos[whale]), whale))[:n_individuals]

    rows = []
    for whale in ranked:
        label = _label_cell(whale, len(photos[whale]), thumb)
        cells = [label]
        for path in photos[whale][:photos_per_individual]:
            cells.append(_letterbox(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), thumb))
        cells += [np.full((thumb, thumb, 3), 40, np.uint8)] * (1 + photos_per_individual - len(cells))
        rows.append(np.hstack(cells))
    sheet = np.vstack(rows) if rows else np.full((thumb, (1 + photos_per_individual) * thumb, 3), 245, np.uint8)
    ok, buf = cv2.imencode(".png", sheet)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(buf.tobytes(), out)
