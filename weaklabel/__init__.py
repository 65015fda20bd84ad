import os

# OpenMP threads that spin while they wait for each other lose their cores to other jobs' processes: on
# 2 busy cores torch's training ran up to 10 times slower than with sleeping waits (about 10% slower when
# idle). libgomp reads this once, when torch loads it, so it is set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.3.0"
