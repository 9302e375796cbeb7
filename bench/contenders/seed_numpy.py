"""Contender: the seed's own NeuralNetMLP (numpy + scipy), as a trial like bench/trial.mjs.

usage: python3 seed_numpy.py SEED_SCRIPT MNIST_DIR '<spec JSON>'   (run.mjs starts it)

SEED_SCRIPT is the seed's seed_mlp.py; nothing of it is copied here. It is loaded as a module
(its command-line block does not run) and its NeuralNetMLP and load_mnist are used unchanged,
with the same workload as the other contenders. Per-epoch times come from the seed's own progress
output (print_progress=True writes 'Epoch: i/N' to stderr at the start of every epoch).
Prints one JSON object on stdout.
"""
import ctypes
import json
import platform
import resource
import runpy
import sys
import time


class EpochClock:
    """Stands in for sys.stderr during fit: notes the time whenever the seed starts an epoch."""

    def __init__(self):
        self.starts = []

    def write(self, text):
        if 'Epoch:' in text:
            self.starts.append(time.perf_counter())

    def flush(self):
        pass


def openblas_info():
    """Which OpenBLAS numpy loaded (numpy's own first), its kernel (core) and thread count."""
    try:
        with open('/proc/self/maps') as maps:
            paths = {line.split()[-1] for line in maps if 'blas' in line.lower()}
    except OSError:
        paths = set()
    ordered = sorted((p for p in paths if p.startswith('/')), key=lambda p: ('numpy' not in p, 'openblas' not in p, p))
    # Plain OpenBLAS names, and the prefixed/suffixed ones of the scipy-openblas builds in numpy wheels.
    for path in ordered:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (('', ''), ('scipy_', '64_'), ('scipy_', '')):
            try:
                corename = getattr(lib, prefix + 'openblas_get_corename' + suffix)
                config = getattr(lib, prefix + 'openblas_get_config' + suffix)
                threads = getattr(lib, prefix + 'openblas_get_num_threads' + suffix)
            except AttributeError:
                continue
            corename.restype = ctypes.c_char_p
            config.restype = ctypes.c_char_p
            return {'library': path, 'core': corename().decode(), 'config': config().decode().strip(),
                    'threads': threads()}
    return {'library': None, 'note': 'no OpenBLAS among the loaded libraries: ' + ', '.join(ordered)}


def percentile(sorted_values, p):
    rank = max(1, min(len(sorted_values), -(-p * len(sorted_values) // 100)))
    return sorted_values[int(rank) - 1]


def main():
    script, mnist_dir, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    work = spec['workload']
    try:
        import numpy as np
        import scipy
    except ImportError as error:
        print(json.dumps({'ok': False, 'skip': 'the seed needs numpy and scipy (%s)' % error}))
        return
    seed = runpy.run_path(script)
    NeuralNetMLP, load_mnist = seed['NeuralNetMLP'], seed['load_mnist']
    m = spec['model']

    X, y = load_mnist(mnist_dir, 'train')
    n = min(work['samples'], len(y))
    X, y = X[:n], y[:n]
    warmup = work['warmup'].get('epochs', 0)
    epochs = warmup + work['timedEpochs']
    nn = NeuralNetMLP(n_output=m['nOutput'], n_features=m['nFeatures'], n_hidden=work['nHidden'],
                      l2=m['l2'], l1=m['l1'], epochs=epochs, eta=m['eta'], alpha=m['alpha'],
                      decrease_const=m['decreaseConst'], minibatches=work['minibatches'],
                      shuffle=m['shuffle'], random_state=m['randomState'])
    clock = EpochClock()
    stderr, sys.stderr = sys.stderr, clock
    try:
        nn.fit(X, y, print_progress=True)
        end = time.perf_counter()
    finally:
        sys.stderr = stderr
    marks = clock.starts + [end]
    seconds = [b - a for a, b in zip(marks, marks[1:])]
    timed = seconds[warmup:]
    result = {
        'ok': True, 'id': spec['contender']['id'],
        'version': 'numpy %s, scipy %s, Python %s' % (np.__version__, scipy.__version__, platform.python_version()),
        'details': {'dtype': 'float64', 'python': sys.executable, 'openblas': openblas_info()},
        'trainedSamples': int(n), 'minibatches': work['minibatches'], 'warmup': work['warmup'],
        'warmupSeconds': sum(seconds[:warmup]), 'epochSeconds': timed,
        'sPerEpoch': sorted(timed)[(len(timed) - 1) // 2],
        'peakRssTrainMB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
    }
    result['details']['threads'] = result['details']['openblas'].get('threads')

    Xt, yt = load_mnist(mnist_dir, 't10k')
    images = (work.get('predict') or {}).get('images', len(yt))
    Xt, yt = Xt[:images], yt[:images]
    result['testAccuracy'] = float((nn.predict(Xt) == yt).mean())
    if work.get('predict'):
        p = work['predict']
        times, start = [], time.perf_counter()
        while len(times) < p['minReps'] or (len(times) < p['maxReps'] and (time.perf_counter() - start) * 1000 < p['budgetMs']):
            t = time.perf_counter()
            nn.predict(Xt)
            times.append((time.perf_counter() - t) * 1000)
        ms = sorted(times)[(len(times) - 1) // 2]
        result['predict'] = {'images': len(yt), 'reps': len(times), 'msMedian': ms, 'msMin': min(times),
                             'imagesPerSecond': len(yt) / ms * 1000}
    if work.get('latency'):
        lat = work['latency']
        rows = len(yt)
        for i in range(lat['warmupCalls']):
            nn.predict(Xt[i % rows:i % rows + 1])
        ns, start = [], time.perf_counter()
        i = 0
        while i < lat['calls'] and (i < 100 or (time.perf_counter() - start) * 1000 < lat['budgetMs']):
            r = i % rows
            t = time.perf_counter_ns()
            nn.predict(Xt[r:r + 1])
            ns.append(time.perf_counter_ns() - t)
            i += 1
        ns.sort()
        result['latency'] = {'calls': len(ns), 'p50us': percentile(ns, 50) / 1000,
                             'p99us': percentile(ns, 99) / 1000, 'maxUs': ns[-1] / 1000}
    result['peakRssMB'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    print(json.dumps(result))


if __name__ == '__main__':
    try:
        main()
    except Exception as error:  # reported to run.mjs as a failed trial
        import traceback
        print(json.dumps({'ok': False, 'error': ''.join(traceback.format_exception(error))}))
        sys.exit(1)
