"""Contender: scikit-learn's MLPClassifier (float64), as a trial like bench/trial.mjs.

usage: python3 sklearn_mlp.py MNIST_DIR '<spec JSON>'   (run.mjs starts it)

The same data, hidden layer (H logistic units), minibatch size and epochs as the other
contenders, one partial_fit call per epoch (each shuffles). Where scikit-learn's model differs
from the seed's: its output layer is a softmax and its loss is the mean over the minibatch, so
the learning rate is the seed's eta times the minibatch size (steps of the seed's size), its L2
penalty alpha is the seed's l2 on that scale, its momentum is classical (the seed's alpha), and
the learning rate does not decay. The pixels are converted to float64 once before training
(scikit-learn would convert them on every call otherwise). Prints one JSON object on stdout.
"""
import json
import platform
import sys
import time

from trial_common import finish, load_idx, mnist_file, openblas_info, run, training_result


def load_mnist(np, mnist_dir, kind):
    prefix = 'train' if kind == 'train' else 't10k'
    shape, pixels = load_idx(mnist_file(mnist_dir, '%s-images-idx3-ubyte' % prefix))
    _, labels = load_idx(mnist_file(mnist_dir, '%s-labels-idx1-ubyte' % prefix))
    images = np.frombuffer(pixels, dtype=np.uint8).reshape(shape[0], shape[1] * shape[2])
    return images, np.frombuffer(labels, dtype=np.uint8).astype(np.int64)


def main():
    mnist_dir, spec = sys.argv[1], json.loads(sys.argv[2])
    work, m = spec['workload'], spec['model']
    try:
        import numpy as np
        import sklearn
        from sklearn.neural_network import MLPClassifier
    except ImportError as error:
        print(json.dumps({'ok': False, 'skip': 'scikit-learn is not installed for %s (%s)' % (sys.executable, error)}))
        return

    X, y = load_mnist(np, mnist_dir, 'train')
    n = min(work['samples'], len(y))
    X, y = X[:n].astype(np.float64), y[:n]
    batch = -(-n // work['minibatches'])
    clf = MLPClassifier(hidden_layer_sizes=(work['nHidden'],), activation='logistic', solver='sgd',
                        alpha=m['l2'], batch_size=batch, learning_rate='constant',
                        learning_rate_init=m['eta'] * batch, momentum=m['alpha'], nesterovs_momentum=False,
                        shuffle=m['shuffle'], random_state=m['randomState'])
    classes = np.arange(m['nOutput'])
    warmup = work['warmup'].get('epochs', 0)
    seconds = []
    for _ in range(warmup + work['timedEpochs']):
        start = time.perf_counter()
        clf.partial_fit(X, y, classes=classes)
        seconds.append(time.perf_counter() - start)
    version = 'scikit-learn %s, numpy %s, Python %s' % (sklearn.__version__, np.__version__, platform.python_version())
    details = {'dtype': 'float64', 'python': sys.executable, 'openblas': openblas_info()}
    result = training_result(spec, version, details, n, seconds)
    result['details']['threads'] = result['details']['openblas'].get('threads')

    Xt, yt = load_mnist(np, mnist_dir, 't10k')
    images = (work.get('predict') or {}).get('images', len(yt))
    Xt, yt = Xt[:images].astype(np.float64), yt[:images]
    finish(result, work, len(yt), (clf.predict(Xt) == yt).mean(), lambda: clf.predict(Xt),
           lambda r: clf.predict(Xt[r:r + 1]))

if __name__ == '__main__':
    run(main)
