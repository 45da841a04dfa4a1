"""The demo's photos: one individual's fluke posed, placed in a scene and degraded.

A photo re-renders the individual (`flukes`) through a planar perspective pose (roll, yaw,
pitch), places it in a freshly rendered sea-and-sky scene, usually with a band of sky
(sometimes a coastline) at the top, hides the tail stock below a waterline that moves with how
far the fluke is raised, and degrades the result (lighting, blur, noise, grayscale, JPEG) the
way real photos vary. ``difficulty`` scales only the photo-to-photo variation of the fluke; the
scenery is drawn independently for every photo, so background never carries identity.

Scene photos are the trouble of animals photographed on land or near a shore: each is taken
at one of a few sites before that site's rocky shore (`render_site`), the same in every photo
taken there whoever is in front, the fluke a loose crop, another animal at the edge of some.
Background then carries no identity either, but it repeats between individuals, so keypoints
on it verify between different individuals' photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from whaleid.demo.flukes import (
    SPRITE_BOTTOM,
    SPRITE_HALF_WIDTH,
    SPRITE_TOP,
    FlukeShape,
    FlukeSprite,
    trailing_edge,
    upsampled,
)

# The Kaggle images were mostly resized to 1050 px wide; this exact size is ~11% of them.
REFERENCE_SIZE = (1050, 600)
GRAYSCALE_SHARE = 0.15


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
    clouds = upsampled(rng.standard_normal((4, 7)), work_w, work_h) + 0.5 * upsampled(
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
    return upsampled(rng.standard_normal(grid), width, height)


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
    shade = upsampled(rng.standard_normal((6, 9)), width, height)[..., None]
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
