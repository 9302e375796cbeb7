"""The compute floor: OpenBLAS's rate on a large matrix product, through numpy, in float64 and
float32, on every core (OpenBLAS's own thread count).

usage: python3 gemm_floor.py MNIST_DIR '<spec JSON>'   (run.mjs starts it like the Python contenders;
MNIST_DIR is not read; the spec's workload is {"n": N, "reps": R})

Times C = A @ B for random N x N matrices: one untimed product, then R timed ones per dtype.
2 N^3 FLOP each; the rate is reported as the median and the best of the R. Prints one JSON object
on stdout.
"""
import json
import sys
import time

from trial_common import openblas_info, run


def rate(np, dtype, n, reps):
    rng = np.random.default_rng(1)
    a = rng.random((n, n)).astype(dtype)
    b = rng.random((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=c)  # warm-up: threads started, pages touched
    seconds = []
    for _ in range(reps):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        seconds.append(time.perf_counter() - t)
    flop = 2.0 * n ** 3
    seconds.sort()
    return {'n': n, 'reps': reps, 'seconds': seconds,
            'gflopsMedian': flop / seconds[(reps - 1) // 2] / 1e9, 'gflopsBest': flop / seconds[0] / 1e9}


def main():
    spec = json.loads(sys.argv[2])['workload']
    try:
        import numpy as np
    except ImportError as error:
        print(json.dumps({'ok': False, 'skip': 'needs numpy (%s)' % error}))
        return
    n, reps = int(spec['n']), int(spec['reps'])
    if n < 1 or reps < 1:
        raise ValueError('n and reps must be positive, got %r' % (spec,))
    rates = {'float64': rate(np, np.float64, n, reps), 'float32': rate(np, np.float32, n, reps)}
    print(json.dumps({'ok': True, 'version': 'numpy %s, Python %s' % (np.__version__, sys.version.split()[0]),
                      'details': {'python': sys.executable, 'openblas': openblas_info()}, 'rates': rates}))


if __name__ == '__main__':
    run(main)
