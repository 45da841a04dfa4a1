"""The random changes a training photo goes through, and the warp that moves a photo.

Two kinds, each written once:
- `build_augmentation`: Keras preprocessing layers (light, rotation, shift, zoom, a flip where
  asked), active only in training, for the models built on keras.applications backbones (the
  classifier, the embedding), each with its own `Augmentation` strengths;
- `similarity_rows` and `warp`: one hand-written rotation, zoom and shift about the centre, for
  what layers cannot do: the autoencoder's augmentation, drawn statelessly for each batch inside
  tf.data (so batches can be augmented in parallel and still come out the same for a seed), and
  the embedding's fixed test-time views.

Pixels that come from outside the photo are zeros, like the padding of the preprocessed squares.
A horizontal flip happens only where asked: a fluke's markings are not mirror-symmetric, so a
mirrored fluke is another animal's pattern.

Import this module only after `gpus.select_devices` has chosen the job's GPUs: it imports
TensorFlow, which fixes the visible devices when it first initialises CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class Augmentation:
    """How far each random change may go: `brightness` and `contrast` (factors of the 0..255
    range; 0 leaves it out), `rotation_degrees`, `shift` and `zoom` (shares of the side); `flip`
    mirrors photos horizontally at random."""

    brightness: float
    contrast: float
    rotation_degrees: float
    shift: float
    zoom: float
    flip: bool = False


def build_augmentation(strength: Augmentation, seed: int) -> keras.Sequential:
    """The layers of `strength`, named ``augmentation``, on 0..255 pictures, each layer seeded
    with the next of `seed`, `seed` + 1, ... in order: brightness, [contrast], rotation, shift,
    zoom, [flip]."""
    layers: list[keras.layers.Layer] = []

    def add(layer_type, *args, **kwargs) -> None:
        layers.append(layer_type(*args, seed=seed + len(layers), dtype="float32", **kwargs))

    fill = dict(fill_mode="constant", fill_value=0.0)
    # Light first: after the geometric moves it would lift the black fill too.
    add(keras.layers.RandomBrightness, strength.brightness, value_range=(0.0, 255.0), name="brightness")
    if strength.contrast:
        add(keras.layers.RandomContrast, strength.contrast, value_range=(0.0, 255.0), name="contrast")
    add(keras.layers.RandomRotation, strength.rotation_degrees / 360.0, name="rotate", **fill)
    add(keras.layers.RandomTranslation, strength.shift, strength.shift, name="shift", **fill)
    add(keras.layers.RandomZoom, strength.zoom, name="zoom", **fill)
    if strength.flip:
        add(keras.layers.RandomFlip, "horizontal", name="flip")
    return keras.Sequential(layers, name="augmentation")


def similarity_rows(cos, sin, zoom, shift_x, shift_y, side) -> list:
    """The first six entries of the projective transform that `keras.ops.image.affine_transform`
    takes (it maps each output pixel to where it is sampled in the input) for: rotate by the
    angle of `cos`, `sin` about the centre, shift by (`shift_x`, `shift_y`) pixels, and sample
    `zoom` times the distance from the centre (below 1: zoom in). That is q = zoom R^-1 (p - c - t) + c.

    Plain arithmetic, so the entries are computed in what is given: float32 tensors drawn per
    batch, or Python floats for a fixed view (exact in float64, then converted once).
    """
    centre = (side - 1.0) / 2.0
    dx, dy = -centre - shift_x, -centre - shift_y
    return [zoom * cos, zoom * sin, zoom * (cos * dx + sin * dy) + centre,
            -(zoom * sin), zoom * cos, zoom * (-sin * dx + cos * dy) + centre]


def warp(x, transforms):
    """The images `x` (B, S, S, C) resampled bilinearly through `transforms` (B, 8), zeros where
    no pixel comes from."""
    return keras.ops.image.affine_transform(x, transforms, interpolation="bilinear", fill_mode="constant",
                                            fill_value=0.0, data_format="channels_last")
