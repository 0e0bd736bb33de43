import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("EXCESS_NO_PROGRESS", "1")
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
