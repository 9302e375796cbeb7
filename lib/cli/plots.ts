/**
 * The seed's two figures as PNG files: the cost curves (`cost.png`) and the first 25 misclassified
 * test digits (`misclassified.png`).
 */
import { Canvas, type Rect, type Rgb } from './raster.js';

const AXIS: Rgb = [38, 38, 38];
const GRID_LINE: Rgb = [232, 232, 232];
const TICK_TEXT: Rgb = [38, 38, 38];
/** matplotlib's default first colour, used by the seed's per-minibatch plot. */
const BLUE: Rgb = [31, 119, 180];
/** The seed plots the per-epoch average with `color='red'`. */
const RED: Rgb = [214, 39, 40];

/** The y range of the seed's cost plots (`plt.ylim([0, 2000])`). */
export const SEED_COST_YMAX = 2000;

/** Tick positions from 0 to at least `max`: 1, 2, 2.5 or 5 times a power of ten, about `target` of them. */
export function niceTicks(max: number, target = 6): number[] {
  if (!(max > 0)) return [0];
  const raw = max / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let k = 0; k * step <= max * (1 + 1e-9); k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** Rounds `value` up to the next tick of {@link niceTicks}. */
function niceCeil(value: number): number {
  const ticks = niceTicks(value, 8);
  const last = ticks[ticks.length - 1];
  if (last >= value) return last;
  return last + (ticks[1] ?? last);
}

function tickLabel(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}

/** The per-epoch averages of the minibatch costs (the seed's `cost_avgs`). */
export function epochAverages(costs: ArrayLike<number>, minibatches: number): Float64Array {
  const epochs = Math.floor(costs.length / minibatches);
  const out = new Float64Array(epochs);
  for (let e = 0; e < epochs; e++) {
    let sum = 0;
    for (let b = 0; b < minibatches; b++) sum += costs[e * minibatches + b];
    out[e] = sum / minibatches;
  }
  return out;
}

/**
 * The y range of both cost panels: the seed's [0, 2000] whenever the per-epoch averages sit in it
 * (the seed's own run; the noisy first epochs are cut off at the top, as in its figure), otherwise
 * a range that fits the averages, so a run on other data still shows its curve.
 */
export function costYMax(averages: ArrayLike<number>): number {
  const sorted = Array.from(averages).filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return SEED_COST_YMAX;
  const median = sorted[Math.floor(sorted.length / 2)];
  if (median <= SEED_COST_YMAX && median >= SEED_COST_YMAX / 8) return SEED_COST_YMAX;
  const high = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.98))];
  return niceCeil(Math.max(high * 1.1, Number.MIN_VALUE));
}

interface Panel {
  frame: Rect;
  title: string;
  xLabel: string;
  values: ArrayLike<number>;
  color: Rgb;
  yMax: number;
}

/** Layout of a cost panel inside a `w` x `h` area at (x, y): where the axes' frame goes. */
function panelFrame(x: number, y: number, w: number, h: number): Rect {
  const left = 66;
  const right = 18;
  const top = 34;
  const bottom = 50;
  return { x: x + left, y: y + top, w: w - left - right, h: h - top - bottom };
}

function drawPanel(canvas: Canvas, panel: Panel): void {
  const { frame, values, yMax } = panel;
  const n = values.length;
  const xMax = Math.max(1, n - 1);
  const px = (i: number) => frame.x + ((frame.w - 1) * i) / xMax;
  const py = (v: number) => frame.y + (frame.h - 1) * (1 - v / yMax);

  const yTicks = niceTicks(yMax, 8).filter((t) => t <= yMax);
  const xTicks = niceTicks(xMax, 5).filter((t) => t <= xMax && Number.isInteger(t));
  for (const t of yTicks) canvas.fillRect({ x: frame.x, y: Math.round(py(t)), w: frame.w, h: 1 }, GRID_LINE);

  canvas.setClip({ x: frame.x + 1, y: frame.y + 1, w: frame.w - 2, h: frame.h - 2 });
  if (n === 1) {
    canvas.fillRect({ x: Math.round(px(0)) - 1, y: Math.round(py(values[0])) - 1, w: 3, h: 3 }, panel.color);
  }
  for (let i = 1; i < n; i++) canvas.line(px(i - 1), py(values[i - 1]), px(i), py(values[i]), panel.color);
  canvas.setClip();
  if (n === 0) canvas.text(frame.x + frame.w / 2, frame.y + frame.h / 2 - 6, 'no completed epoch', AXIS, { align: 'center' });

  canvas.strokeRect(frame, AXIS);
  const bottom = frame.y + frame.h;
  for (const t of yTicks) {
    const y = Math.round(py(t));
    canvas.fillRect({ x: frame.x - 4, y, w: 4, h: 1 }, AXIS);
    canvas.text(frame.x - 7, y - 6, tickLabel(t), TICK_TEXT, { align: 'right' });
  }
  for (const t of xTicks) {
    const x = Math.round(px(t));
    canvas.fillRect({ x, y: bottom, w: 1, h: 4 }, AXIS);
    canvas.text(x, bottom + 7, tickLabel(t), TICK_TEXT, { align: 'center' });
  }
  canvas.text(frame.x + frame.w / 2, bottom + 27, panel.xLabel, AXIS, { align: 'center' });
  canvas.textVertical(frame.x - 60, frame.y + frame.h / 2, 'Cost', AXIS);
  canvas.text(frame.x + frame.w / 2, frame.y - 22, panel.title, AXIS, { align: 'center', bold: true });
}

/** Size of `cost.png`. */
export const COST_PLOT_SIZE = Object.freeze({ width: 1040, height: 400 });

/**
 * The seed's two cost figures side by side: left, the cost of every minibatch in order (x
 * "Epochs * minibatches", y 0 to 2000); right, the cost averaged over each epoch's minibatches (red).
 *
 * @param costs the minibatch costs in order (`nn.costs`), `minibatches` per epoch.
 * @returns PNG bytes.
 */
export function costPlotPng(costs: ArrayLike<number>, minibatches: number): Buffer {
  const { width, height } = COST_PLOT_SIZE;
  const canvas = new Canvas(width, height);
  const averages = epochAverages(costs, minibatches);
  const yMax = costYMax(averages);
  const half = width / 2;
  drawPanel(canvas, {
    frame: panelFrame(0, 0, half, height),
    title: 'Cost of every minibatch',
    xLabel: `Epochs * ${minibatches}`,
    values: costs,
    color: BLUE,
    yMax,
  });
  drawPanel(canvas, {
    frame: panelFrame(half, 0, half, height),
    title: 'Cost averaged over each epoch',
    xLabel: 'Epochs',
    values: averages,
    color: RED,
    yMax,
  });
  return canvas.toPng();
}

/** One misclassified test image. */
export interface Misclassified {
  /** The image's pixels, 0..255, row-major. */
  image: ArrayLike<number>;
  /** The true label (`t`). */
  label: number;
  /** The predicted label (`p`). */
  predicted: number;
}

/** Geometry of `misclassified.png`, exported so tests can look where the digits should be. */
export const GRID = Object.freeze({
  columns: 5,
  rows: 5,
  /** Side of a drawn image in pixels, about: 28-pixel MNIST digits are drawn 3x. */
  targetSide: 84,
  margin: 10,
  /** Narrowest cell: room for a title such as `25) t: 7 p: 9`. */
  minCellWidth: 100,
  titleHeight: 13,
  gap: 4,
  cellPaddingBottom: 14,
});

/** How many screen pixels each image pixel becomes (3 for MNIST's 28 x 28). */
export function gridScale(imageSize = 28): number {
  return Math.max(1, Math.round(GRID.targetSide / imageSize));
}

/** Where cell `i` (0-based, row by row) puts its title and its image, for `imageSize` x `imageSize` images. */
export function gridCell(i: number, imageSize = 28): { title: Rect; image: Rect } {
  const side = imageSize * gridScale(imageSize);
  const cellWidth = Math.max(GRID.minCellWidth, side + 16);
  const cellHeight = GRID.titleHeight + GRID.gap + side + GRID.cellPaddingBottom;
  const x = GRID.margin + (i % GRID.columns) * cellWidth;
  const y = GRID.margin + Math.floor(i / GRID.columns) * cellHeight;
  return {
    title: { x, y, w: cellWidth, h: GRID.titleHeight },
    image: { x: x + Math.round((cellWidth - side) / 2), y: y + GRID.titleHeight + GRID.gap, w: side, h: side },
  };
}

/** Pixel size of `misclassified.png` for `imageSize` x `imageSize` images. */
export function gridSize(imageSize = 28): { width: number; height: number } {
  const last = gridCell(GRID.columns * GRID.rows - 1, imageSize);
  return {
    width: last.title.x + last.title.w + GRID.margin,
    height: last.image.y + last.image.h + GRID.cellPaddingBottom + GRID.margin,
  };
}

/**
 * The seed's grid of misclassified digits: up to 25 images, 5 x 5, each titled
 * `i) t: T p: P` (1-based i, true label, predicted label), drawn dark on white.
 *
 * @param items the misclassified images in test-set order (only the first 25 are drawn).
 * @param imageRows height of each image, e.g. 28.
 * @param imageCols width of each image, e.g. 28.
 * @returns PNG bytes.
 */
export function misclassifiedPng(items: readonly Misclassified[], imageRows: number, imageCols: number): Buffer {
  const side = Math.max(imageRows, imageCols);
  const { width, height } = gridSize(side);
  const canvas = new Canvas(width, height);
  const shown = items.slice(0, GRID.columns * GRID.rows);
  shown.forEach((item, i) => {
    const cell = gridCell(i, side);
    canvas.text(cell.title.x + cell.title.w / 2, cell.title.y, `${i + 1}) t: ${item.label} p: ${item.predicted}`, AXIS, { align: 'center' });
    const scale = gridScale(side);
    const x = cell.image.x + Math.floor(((side - imageCols) * scale) / 2);
    const y = cell.image.y + Math.floor(((side - imageRows) * scale) / 2);
    canvas.greysImage(x, y, item.image, imageRows, imageCols, scale);
    canvas.strokeRect({ x: cell.image.x - 1, y: cell.image.y - 1, w: cell.image.w + 2, h: cell.image.h + 2 }, AXIS);
  });
  if (shown.length === 0) canvas.text(width / 2, height / 2 - 6, 'No test image was misclassified', AXIS, { align: 'center' });
  return canvas.toPng();
}
