"""loaxa: broadcast scheduling for Vietnamese commune radio and village loudspeakers."""

import os

# The audio pipeline runs its own threads (two measure a programme; one computes the true
# peak beside the loudness filter) next to ffmpeg processes. OpenBLAS's threads, which spin
# while they wait, fight them: measuring 15 minutes took 10 s with OpenBLAS's default on
# two cores, 0.6 s with one BLAS thread. Set before numpy loads; an operator's setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
