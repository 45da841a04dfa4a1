import logging

from whaleid.logs import Progress


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_progress_shows_a_bar_the_rate_and_the_time_left(caplog, monkeypatch):
    clock = iter([0.0, 0.0, 10.0, 12.0, 30.0])
    monkeypatch.setattr("whaleid.logs.time.monotonic", lambda: next(clock))
    progress = Progress(logging.getLogger("test"), "encoded train", every=5.0)
    with caplog.at_level(logging.INFO):
        progress(0, 100)    # the start: nothing to say yet
        progress(40, 100)   # 10 s in: 4 a second, 15 s to go
        progress(50, 100)   # 2 s later: too soon for another line
        progress(100, 100)  # the end is always shown
    assert messages(caplog) == [
        "encoded train [########............] 40% 40/100, 4.0/s, 15 s left",
        "encoded train [####################] 100% 100/100, 3.3/s, done",
    ]


def test_a_resumed_job_counts_only_its_own_work_in_the_rate(caplog, monkeypatch):
    clock = iter([0.0, 0.0, 10.0])
    monkeypatch.setattr("whaleid.logs.time.monotonic", lambda: next(clock))
    progress = Progress(logging.getLogger("test"), "preprocessed test", every=5.0)
    with caplog.at_level(logging.INFO):
        progress(60, 100)  # chunks finished before the kill
        progress(80, 100)
    assert messages(caplog) == [
        "preprocessed test [############........] 60% 60/100, resumed",
        "preprocessed test [################....] 80% 80/100, 2.0/s, 10 s left",
    ]
