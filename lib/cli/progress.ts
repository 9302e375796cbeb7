/**
 * Training progress on stderr: a one-line bar redrawn in place on a terminal, plain lines every
 * few seconds otherwise (logs, CI, pipes).
 *
 * Hand-written rather than `cli-progress`: we draw a single line that changes once per epoch and
 * need a plain-line mode with our own wording for non-terminals; fifty lines here are simpler
 * than configuring a general multi-bar library and adding a dependency.
 */

/** What is shown after every epoch. */
export interface ProgressUpdate {
  epoch: number;
  epochs: number;
  /** The epoch's average minibatch cost. */
  cost: number;
  elapsedMs: number;
}

/** The stream the progress goes to (stderr), as far as we use it. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** `h:mm:ss` or `m:ss`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--';
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

function formatCost(cost: number): string {
  return Math.abs(cost) >= 1000 ? cost.toFixed(1) : cost.toPrecision(4);
}

/** Reports epochs as a bar (terminal) or as a plain line every `intervalMs` (anything else). */
export class Progress {
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  readonly #intervalMs: number;
  #lastPlain = -Infinity;
  #lastDraw = -Infinity;
  #barShown = false;

  constructor(stream: ProgressStream, options: { intervalMs?: number } = {}) {
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
    this.#intervalMs = options.intervalMs ?? 5000;
  }

  /** Shows "epoch 0" before the first epoch ends, so the terminal does not look idle. */
  start(epochs: number): void {
    if (this.#tty) this.#draw({ epoch: 0, epochs, cost: NaN, elapsedMs: 0 });
  }

  update(u: ProgressUpdate): void {
    const now = performance.now();
    const last = u.epoch === u.epochs;
    if (this.#tty) {
      // Redrawing at most ten times a second keeps fast runs from flooding the terminal.
      if (last || now - this.#lastDraw >= 100) this.#draw(u);
      return;
    }
    if (u.epoch === 1 || last || now - this.#lastPlain >= this.#intervalMs) {
      this.#lastPlain = now;
      this.#stream.write(`${this.#fields(u).join('  ')}\n`);
    }
  }

  /** Ends the bar's line so that later output starts on a fresh one. */
  finish(): void {
    if (this.#barShown) this.#stream.write('\n');
    this.#barShown = false;
  }

  /** Writes a message on its own line without garbling the bar. */
  note(message: string): void {
    this.finish();
    this.#stream.write(`${message}\n`);
  }

  /** The epoch counter, then elapsed time, ETA and cost. */
  #fields(u: ProgressUpdate): [string, string] {
    const width = String(u.epochs).length;
    const eta = u.epoch > 0 ? (u.elapsedMs / u.epoch) * (u.epochs - u.epoch) : NaN;
    const cost = Number.isFinite(u.cost) ? `cost ${formatCost(u.cost)}` : 'cost -';
    return [`Epoch ${String(u.epoch).padStart(width)}/${u.epochs}`, `elapsed ${formatDuration(u.elapsedMs)}  ETA ${formatDuration(eta)}  ${cost}`];
  }

  #draw(u: ProgressUpdate): void {
    this.#lastDraw = performance.now();
    const [head, tail] = this.#fields(u);
    const columns = this.#stream.columns ?? 80;
    const barWidth = Math.max(0, Math.min(40, columns - head.length - tail.length - 12));
    let bar = '';
    if (barWidth >= 10) {
      const filled = Math.round((barWidth * u.epoch) / u.epochs);
      const pct = `${Math.floor((100 * u.epoch) / u.epochs)}%`.padStart(4);
      bar = ` [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${pct}`;
    }
    // \r returns to the line start, \x1b[K clears what a longer previous line left behind.
    this.#stream.write(`\r${head}${bar}  ${tail}\x1b[K`);
    this.#barShown = true;
  }
}
