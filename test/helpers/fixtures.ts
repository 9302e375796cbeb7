/** The numpy fixtures in test/fixtures/ (see generate.py), typed. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function load<T>(name: string): T {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)), 'utf8')) as T;
}

export interface RandomFixture {
  random_sample: { seed: number; values: number[] }[];
  uniform: { seed: number; low: number; high: number; values: number[] };
  permutation: { seed: number; n: number; draws_before: number; perm: number[] }[];
}

export interface SeedConfig {
  n_output: number;
  n_features: number;
  n_hidden: number;
  l1: number;
  l2: number;
  epochs: number;
  eta: number;
  alpha: number;
  decrease_const: number;
  shuffle: boolean;
  minibatches: number;
  random_state: number;
}

export interface SeedCase {
  name: string;
  config: SeedConfig;
  x_div255: boolean;
  X: number[][];
  y: number[];
  w1_init: number[][];
  w2_init: number[][];
  permutations: number[][];
  minibatch_sizes: number[];
  cost: number[];
  w1_final: number[][];
  w2_final: number[][];
  predict: number[];
  /** n_output x n_samples */
  z3: number[][];
}

export interface MnistFixture {
  note: string;
  config: SeedConfig;
  n_train: number;
  n_test: number;
  w1_init_first: number[];
  w2_init_first: number[];
  w1_init_sum: number;
  perm_first: number[];
  perm_last: number[];
  perm_weighted_sum: number;
  cost: number[];
  test_accuracy: number;
  train_accuracy: number;
}

export const randomFixture = (): RandomFixture => load<RandomFixture>('random.json');
export const seedSmallFixture = (): { cases: SeedCase[] } => load<{ cases: SeedCase[] }>('seed_small.json');
export const mnistFixture = (): MnistFixture => load<MnistFixture>('mnist_seed.json');
