"""Contender: the seed's model and training loop written in PyTorch (CPU, float32), as a trial like
bench/trial.mjs.

usage: python3 torch_mlp.py MNIST_DIR '<spec JSON>'   (run.mjs starts it)

The same workload as the other contenders: raw pixels 0..255, 784-H-10 with sigmoid units, the
seed's cost (cross-entropy summed over the minibatch's samples and outputs, plus l2/2 * sum w^2
over the non-bias weights), its update (w -= eta * grad + alpha * previous eta * grad), its
learning-rate decay and a fresh shuffle every epoch, minibatches cut like np.array_split. Pixels
stay bytes and each minibatch is gathered and converted to float32 as it is used. The gradient
comes from autograd. PyTorch is given every core (torch.set_num_threads). Prints one JSON object
on stdout.
"""
import json
import os
import platform
import sys
import time

from trial_common import finish, load_idx, mnist_file, run, training_result


def load_mnist(torch, mnist_dir, kind):
    """Images as a uint8 tensor (rows x 784) and labels as int64, like the seed's load_mnist."""
    prefix = 'train' if kind == 'train' else 't10k'
    shape, pixels = load_idx(mnist_file(mnist_dir, '%s-images-idx3-ubyte' % prefix))
    _, labels = load_idx(mnist_file(mnist_dir, '%s-labels-idx1-ubyte' % prefix))
    images = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(shape[0], shape[1] * shape[2])
    return images, torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()


def main():
    mnist_dir, spec = sys.argv[1], json.loads(sys.argv[2])
    work, m = spec['workload'], spec['model']
    try:
        import torch
    except ImportError as error:
        print(json.dumps({'ok': False, 'skip': 'PyTorch is not installed for %s (%s)' % (sys.executable, error)}))
        return
    # Every core, like the other contenders (some builds start with one intra-op thread).
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(m['randomState'])

    X, y = load_mnist(torch, mnist_dir, 'train')
    n = min(work['samples'], len(y))
    X, y = X[:n], y[:n]
    n_hidden, n_output = work['nHidden'], m['nOutput']
    net = torch.nn.Sequential(
        torch.nn.Linear(m['nFeatures'], n_hidden), torch.nn.Sigmoid(), torch.nn.Linear(n_hidden, n_output))
    with torch.no_grad():  # the seed's initialisation: uniform in [-1, 1]
        for p in net.parameters():
            p.uniform_(-1.0, 1.0)
    weights = [net[0].weight, net[2].weight]  # the non-bias weights (regularised)
    params = list(net.parameters())
    previous = [torch.zeros_like(p) for p in params]
    one_hot = torch.nn.functional.one_hot(y, n_output).float()
    l1, l2, alpha = m['l1'], m['l2'], m['alpha']
    cost = torch.nn.BCEWithLogitsLoss(reduction='sum')

    warmup = work['warmup'].get('epochs', 0)
    epochs = warmup + work['timedEpochs']
    eta = m['eta']
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        eta /= 1 + m['decreaseConst'] * epoch
        order = torch.randperm(n) if m['shuffle'] else torch.arange(n)
        for idx in torch.tensor_split(order, work['minibatches']):
            xb = X[idx].float()
            loss = cost(net(xb), one_hot[idx])
            loss = loss + l2 / 2 * sum((w * w).sum() for w in weights) + l1 / 2 * sum(w.abs().sum() for w in weights)
            for p in params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                if l1:
                    for w in weights:  # the seed steps along l1 * sign(w) (its cost has l1 / 2)
                        w.grad.add_(w.sign(), alpha=l1 / 2)
                for p, prev in zip(params, previous):
                    delta = p.grad * eta
                    p.sub_(delta + alpha * prev)
                    prev.copy_(delta)
        seconds.append(time.perf_counter() - start)
    version = 'PyTorch %s, Python %s' % (torch.__version__, platform.python_version())
    details = {'dtype': 'float32', 'python': sys.executable, 'threads': torch.get_num_threads()}
    result = training_result(spec, version, details, n, seconds)

    Xt, yt = load_mnist(torch, mnist_dir, 't10k')
    images = (work.get('predict') or {}).get('images', len(yt))
    Xt, yt = Xt[:images], yt[:images]

    def predict(rows):
        with torch.no_grad():
            return net(rows.float()).argmax(dim=1)

    finish(result, work, len(yt), (predict(Xt) == yt).float().mean(), lambda: predict(Xt),
           lambda r: predict(Xt[r:r + 1]))

if __name__ == '__main__':
    run(main)
