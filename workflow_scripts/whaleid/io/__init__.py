"""What every job reads and writes, whatever its stage: files written atomically (`files`),
CSV tables (`tables`), large per-photo arrays built in resumable chunks (`arrays`), and the
job's log and progress (`logs`). numpy, pandas and joblib only.
"""
