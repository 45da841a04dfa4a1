"""The ImageNet weights files of the keras.applications backbones, without TensorFlow.

Which file a backbone reads at which input side, where Keras looks for it, and
`stage_imagenet_weights`, which puts it into a folder that jobs read as ``KERAS_HOME``: GPU
nodes often have no internet, so the workflow downloads the file once, on the submit host
(rule stage_weights), and the training jobs find it there.

Imports only the standard library, so the Snakefile can use it and `snakemake -n` stays fast
(tests/test_weights.py checks that no numpy, TensorFlow or Keras comes with it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from whaleid.vocabulary import IMAGENET_BACKBONES, INPUT_KINDS, check_choice

log = logging.getLogger(__name__)

# The autoencoder halves its input twice (autoencoder.REDUCTION): codes are a quarter of the side.
CODE_REDUCTION = 4
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
# MobileNetV2 has ImageNet weights for these input sides; keras.applications uses 224's otherwise.
MOBILENET_SIDES = (96, 128, 160, 192, 224)
# Seconds without an answer from the server before a download is given up.
DOWNLOAD_TIMEOUT = 60.0
_CHUNK = 1 << 20
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class ImagenetWeights:
    """The file keras.applications downloads for a backbone without its top."""

    file_name: str
    url: str
    md5: str | None


class MissingWeightsError(RuntimeError):
    """ImageNet weights that are neither in the Keras cache nor downloadable."""


def imagenet_weights(backbone: str, side: int) -> ImagenetWeights:
    """The no-top ImageNet weights file of `backbone` for inputs `side` pixels square (names,
    URLs and hashes as keras.applications has them)."""
    check_choice("backbone", backbone, IMAGENET_BACKBONES)
    if backbone == "vgg19":
        name = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
        return ImagenetWeights(name, f"{WEIGHTS_URL}vgg19/{name}", "253f8cb515780f3b799900260a226db6")
    if backbone == "resnet50":
        name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
        return ImagenetWeights(name, f"{WEIGHTS_URL}resnet/{name}", "4d473c1dd8becc155b73f8504c6f6626")
    rows = side if side in MOBILENET_SIDES else 224
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
    return ImagenetWeights(name, f"{WEIGHTS_URL}mobilenet_v2/{name}", None)


def array_side(input_kind: str, preprocess_size: int) -> int:
    """The side of the arrays a model reads: the preprocessed squares (``images``) or the
    autoencoder's codes (``codes``, a quarter of it)."""
    check_choice("input", input_kind, INPUT_KINDS)
    return preprocess_size // CODE_REDUCTION if input_kind == "codes" else preprocess_size


def backbone_side(input_side: int, input_size: int | None) -> int:
    """The side the backbone sees: `input_size` when the model resizes its inputs to it, else
    the inputs' own side."""
    return input_size or input_side


def keras_models_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` if set, else ``~/.keras/models``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "models"


def placement_advice(spec: ImagenetWeights, folder: Path) -> str:
    """What to do by hand: the address, the file name and the folder."""
    return (f"On a machine with network access, download {spec.url} and place it, named {spec.file_name}, "
            f"in {folder}/")


def file_md5(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_hdf5(path: Path) -> bool:
    """An HDF5 file starts with its signature (at 0, or after a user block of 512 bytes or a
    power of two more): not an error page a proxy sent instead."""
    with open(path, "rb") as file:
        offset = 0
        while True:
            file.seek(offset)
            head = file.read(len(_HDF5_SIGNATURE))
            if head == _HDF5_SIGNATURE:
                return True
            if len(head) < len(_HDF5_SIGNATURE):
                return False
            offset = 512 if offset == 0 else offset * 2


def weights_problem(path: Path, spec: ImagenetWeights) -> str | None:
    """Why `path` is not `spec`'s file (a wrong MD5, or not an HDF5 file where no MD5 is
    known), or None when it is."""
    if spec.md5 is not None:
        actual = file_md5(path)
        return None if actual == spec.md5 else (
            f"its MD5 is {actual}, not {spec.md5}: it is incomplete or another file")
    return None if _is_hdf5(path) else "it is not an HDF5 file: an error page or an incomplete download"


def _download(url: str, destination: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as answer, open(destination, "wb") as file:
        shutil.copyfileobj(answer, file, _CHUNK)


def stage_imagenet_weights(backbone: str, side: int, keras_home: str | Path, *, cache_dir: str | Path | None = None,
                           timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Put `backbone`'s no-top ImageNet weights for inputs `side` square into
    ``<keras_home>/models/``, where Keras finds them with ``KERAS_HOME=<keras_home>``, and
    return the file's path.

    Copied from `cache_dir` (default `keras_models_dir()`, the user's own Keras cache) when the
    file is there and checks out (its MD5 where one is known), else downloaded; either way
    written under a temporary name and renamed once checked, so a failure leaves nothing under
    the final name. Raises MissingWeightsError, naming the address, the file name and the
    folder, when the file can be neither copied nor downloaded (no internet), or when what was
    downloaded fails the check.
    """
    spec = imagenet_weights(backbone, side)
    folder = Path(keras_home).expanduser() / "models"
    destination = folder / spec.file_name
    cached = Path(cache_dir).expanduser() / spec.file_name if cache_dir is not None \
        else keras_models_dir() / spec.file_name
    folder.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f"{destination.stem}.tmp-{os.getpid()}{destination.suffix}")
    cache_note = ""
    try:
        if cached.is_file():
            problem = weights_problem(cached, spec)
            if problem is None:
                if cached.resolve() == destination.resolve():
                    log.info("%s is already in place", destination)
                    return destination
                shutil.copyfile(cached, temporary)
                os.replace(temporary, destination)
                log.info("copied %s from the Keras cache to %s", cached, destination)
                return destination
            cache_note = f" The Keras cache holds {cached}, but {problem}; it was not used."
            log.warning("not copying %s: %s; downloading instead", cached, problem)
        try:
            log.info("downloading %s to %s", spec.url, destination)
            _download(spec.url, temporary, timeout)
        except OSError as error:  # URLError, HTTPError, timeouts and refused connections are OSErrors
            raise MissingWeightsError(
                f"the ImageNet weights of {backbone} are not in the Keras cache ({cached.parent}/) and could not "
                f"be downloaded ({type(error).__name__}: {error}).{cache_note} {placement_advice(spec, folder)} "
                f"(or into the Keras cache, {cached.parent}/, and stage again). Or set weights to the path of a "
                f"local weights file, or to none to train from scratch.") from error
        problem = weights_problem(temporary, spec)
        if problem is not None:
            raise MissingWeightsError(
                f"the file downloaded from {spec.url} was refused: {problem}.{cache_note} Stage again, or: "
                f"{placement_advice(spec, folder)}")
        os.replace(temporary, destination)
        log.info("downloaded %s (%d bytes)", destination, destination.stat().st_size)
        return destination
    finally:
        if temporary.exists():
            temporary.unlink()
