"""What holds OpenCV's kernels to those of every x86-64 processor (whaleid.reproducibility)."""

import re

import pytest

from whaleid.reproducibility import OPENCV_HELD, held_environment


def test_opencv_is_held_off_avx512_keeping_what_the_caller_disabled_already():
    assert held_environment({}) == OPENCV_HELD == {"OPENCV_CPU_DISABLE": "AVX512-SKX"}
    assert held_environment({"OPENCV_CPU_DISABLE": "AVX2"}) == {"OPENCV_CPU_DISABLE": "AVX2,AVX512-SKX"}
    assert held_environment({"OPENCV_CPU_DISABLE": "AVX512-SKX,AVX2"}) == {"OPENCV_CPU_DISABLE": "AVX512-SKX,AVX2"}


@pytest.mark.slow
def test_every_keypoint_job_of_a_run_ran_opencv_held_off_avx512(tiny_run):
    logs = sorted((tiny_run["results"] / "logs" / "local_keypoints_chunk").rglob("*.log"))
    lines = [line for log in logs for line in log.read_text().splitlines() if "OpenCV's kernels" in line]
    assert len(lines) == len(logs) == 6
    # "?": held off (or not on this processor); without it, dispatched
    assert not [line for line in lines if re.search(r"AVX512-SKX(?!\?)", line)], lines[0]
