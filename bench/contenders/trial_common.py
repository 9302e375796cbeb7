"""What the Python contenders share: reading MNIST's IDX files, the result object of
bench/trial.mjs, its prediction measurements (throughput over the test images, then single-image
latency), and reporting a failure."""
import ctypes
import gzip
import json
import os
import resource
import struct
import sys
import time


def load_idx(path):
    """An IDX file (plain or .gz), as (shape, bytes)."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    ndims = data[3]
    shape = struct.unpack('>' + 'I' * ndims, data[4:4 + 4 * ndims])
    return shape, data[4 + 4 * ndims:]


def mnist_file(mnist_dir, stem):
    """The path of one of MNIST's files, plain or gzipped."""
    for name in (stem, stem + '.gz'):
        path = os.path.join(mnist_dir, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError('%s(.gz) not in %s' % (stem, mnist_dir))


def percentile(sorted_values, p):
    rank = max(1, min(len(sorted_values), -(-p * len(sorted_values) // 100)))
    return sorted_values[int(rank) - 1]


def measure_predict(predict_all, images, p):
    """Repeated predictions of all test images: at least minReps, then until budgetMs or maxReps."""
    times, start = [], time.perf_counter()
    while len(times) < p['minReps'] or (len(times) < p['maxReps'] and (time.perf_counter() - start) * 1000 < p['budgetMs']):
        t = time.perf_counter()
        predict_all()
        times.append((time.perf_counter() - t) * 1000)
    ms = sorted(times)[(len(times) - 1) // 2]
    return {'images': images, 'reps': len(times), 'msMedian': ms, 'msMin': min(times), 'imagesPerSecond': images / ms * 1000}


def measure_latency(predict_one, rows, lat):
    """Single-image predictions, one test image after another, each timed on its own."""
    for i in range(lat['warmupCalls']):
        predict_one(i % rows)
    ns, start = [], time.perf_counter()
    i = 0
    while i < lat['calls'] and (i < 100 or (time.perf_counter() - start) * 1000 < lat['budgetMs']):
        t = time.perf_counter_ns()
        predict_one(i % rows)
        ns.append(time.perf_counter_ns() - t)
        i += 1
    ns.sort()
    return {'calls': len(ns), 'p50us': percentile(ns, 50) / 1000, 'p99us': percentile(ns, 99) / 1000, 'maxUs': ns[-1] / 1000}


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


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def training_result(spec, version, details, samples, seconds):
    """The trial's result after training: `seconds` holds every epoch, warm-up epochs first."""
    work = spec['workload']
    warmup = work['warmup'].get('epochs', 0)
    timed = seconds[warmup:]
    return {
        'ok': True, 'id': spec['contender']['id'], 'version': version, 'details': details,
        'trainedSamples': int(samples), 'minibatches': work['minibatches'], 'warmup': work['warmup'],
        'warmupSeconds': sum(seconds[:warmup]), 'epochSeconds': timed,
        'sPerEpoch': sorted(timed)[(len(timed) - 1) // 2],
        'peakRssTrainMB': peak_rss_mb(),
    }


def finish(result, work, rows, accuracy, predict_all, predict_one):
    """Adds the test accuracy and the prediction measurements, then prints the result."""
    result['testAccuracy'] = float(accuracy)
    if work.get('predict'):
        result['predict'] = measure_predict(predict_all, rows, work['predict'])
    if work.get('latency'):
        result['latency'] = measure_latency(predict_one, rows, work['latency'])
    result['peakRssMB'] = peak_rss_mb()
    print(json.dumps(result))


def run(main):
    """Runs a contender's main(); an exception is reported to run.mjs as a failed trial."""
    try:
        main()
    except Exception as error:
        import traceback
        print(json.dumps({'ok': False, 'error': ''.join(traceback.format_exception(error))}))
        sys.exit(1)
