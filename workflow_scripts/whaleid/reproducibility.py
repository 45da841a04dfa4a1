"""What holds a run's arithmetic to the same kernels on every x86-64 processor (`reproducible`).

OpenCV picks some of its kernels when it loads, by the instructions the processor offers: on one
with AVX-512 (Intel since Skylake-X, AMD since Zen 4) its SIFT descriptors come out one unit
apart from an AVX2 processor's for a few photos (4 of 200 right-whale photos,
benchmarks/opencv_isa.py), which moves which keypoints match. `OPENCV_HELD` keeps it to the
kernels every current x86-64 processor runs; OpenCV reads it when it loads, so it is set in the
environment every job starts with (the Snakefile), not in a job that has imported it already.
TensorFlow's oneDNN is held likewise in each TensorFlow job (`learning.tensorflow_runtime`).
"""

# OpenCV's name of its AVX-512 kernels (`cv2.getCPUFeaturesLine()`); holding it off costs no
# measurable time on the keypoints (benchmarks/opencv_isa.py).
OPENCV_HELD = {"OPENCV_CPU_DISABLE": "AVX512-SKX"}


def held_environment(environ) -> dict[str, str]:
    """The variables of `OPENCV_HELD` as a job's environment is to hold them, with what `environ`
    (the caller's os.environ) disables already kept: OPENCV_CPU_DISABLE is a comma-separated list."""
    held = {}
    for variable, value in OPENCV_HELD.items():
        given = [item for item in environ.get(variable, "").split(",") if item.strip()]
        held[variable] = ",".join(given + ([value] if value not in given else []))
    return held


def opencv_kernels() -> str:
    """OpenCV's instruction sets as it loaded (`cv2.getCPUFeaturesLine()`: * dispatched at run
    time, ? held off or not on this processor), for a job's log."""
    import cv2

    return cv2.getCPUFeaturesLine()
