"""The demo's individuals: what tells one humpback fluke from another, and the fluke drawn.

The real playground data are photo-ID pictures: a humpback lifts its tail as it dives and
the photographer, behind it, catches the underside of the fluke. Researchers tell individuals
apart by what does not change between encounters:

* the trailing edge (the upper edge, split by the central notch): its serrations, nicks
  and missing chunks, their positions and depths;
* the black/white pigmentation of the underside: how much is white, where the boundary
  between black and white runs, black spots on white and white spots on black;
* scars: parallel rake marks from orca teeth, single scratches, rings left by barnacles.

Here every individual is a random :class:`Individual` holding exactly those features in a
canonical frame (the notch at the origin, half-span 1, y pointing down), drawn by `draw_fluke`
as a sprite that `scenes` puts in a photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Canonical frame: notch at (0, 0), lobe tips near x = +-1, y grows downwards (towards the
# water).  The sprite covers this box; nothing of the fluke is drawn outside it.
SPRITE_HALF_WIDTH = 1.08
SPRITE_TOP = 0.58
SPRITE_BOTTOM = 1.12


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


def upsampled(grid: np.ndarray, width: int, height: int) -> np.ndarray:
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

    sym = upsampled(pig.symmetric_field, width, height)
    sym = 0.5 * (sym + sym[:, ::-1])
    field = 0.9 * sym + 0.5 * upsampled(pig.asymmetric_field, width, height)
    (cx, cf), (rx, rf) = pig.lobe_centre, pig.lobe_radius
    field += pig.lobe_weight * 2.0 * np.exp(-(((ax - cx) / rx) ** 2) - ((frac - cf) / rf) ** 2)
    depth_below_trail = np.maximum(frac * chord[None, :], 0.0)
    field -= pig.trailing_margin[1] * 2.0 * np.exp(-depth_below_trail / pig.trailing_margin[0])
    depth_above_lead = np.maximum((1 - frac) * chord[None, :], 0)
    field -= pig.leading_margin[1] * 2.0 * np.exp(-depth_above_lead / pig.leading_margin[0])
    field -= pig.midline_strength * 2.0 * np.exp(-((ax / 0.07) ** 2))
    field += 0.35 * upsampled(pig.ragged_field, width, height)

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
    mottle = upsampled(ind.pigmentation.mottle_field, width, height)
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
