"""Contender: the seed's own NeuralNetMLP (numpy + scipy), as a trial like bench/trial.mjs.

usage: python3 seed_numpy.py SEED_SCRIPT MNIST_DIR '<spec JSON>'   (run.mjs starts it)

SEED_SCRIPT is the seed's seed_mlp.py; nothing of it is copied here. It is loaded as a module
(its command-line block does not run) and its NeuralNetMLP and load_mnist are used unchanged,
with the same workload as the other contenders. Per-epoch times come from the seed's own progress
output (print_progress=True writes 'Epoch: i/N' to stderr at the start of every epoch).
Prints one JSON object on stdout.
"""
import json
import platform
import runpy
import sys
import time

from trial_common import finish, openblas_info, run, training_result


class EpochClock:
    """Stands in for sys.stderr during fit: notes the time whenever the seed starts an epoch."""

    def __init__(self):
        self.starts = []

    def write(self, text):
        if 'Epoch:' in text:
            self.starts.append(time.perf_counter())

    def flush(self):
        pass


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
    version = 'numpy %s, scipy %s, Python %s' % (np.__version__, scipy.__version__, platform.python_version())
    details = {'dtype': 'float64', 'python': sys.executable, 'openblas': openblas_info()}
    result = training_result(spec, version, details, n, seconds)
    result['details']['threads'] = result['details']['openblas'].get('threads')

    Xt, yt = load_mnist(mnist_dir, 't10k')
    images = (work.get('predict') or {}).get('images', len(yt))
    Xt, yt = Xt[:images], yt[:images]
    finish(result, work, len(yt), (nn.predict(Xt) == yt).mean(), lambda: nn.predict(Xt),
           lambda r: nn.predict(Xt[r:r + 1]))

if __name__ == '__main__':
    run(main)
