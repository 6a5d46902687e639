"""Preloaded first by the local engine's forkserver, before NumPy, OpenCV and PyTorch: one
thread per worker process, so N workers use N cores (their thread pools read these variables
when they load). Imported nowhere else: its import sets environment variables."""

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_name] = "1"
os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
