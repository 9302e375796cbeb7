/**
 * A small RGB canvas for the CLI's pictures: filled rectangles, anti-aliased lines, bitmap text
 * and scaled grey images, encoded as PNG by `pngjs` (pure JavaScript, no native build).
 */
import { PNG } from 'pngjs';
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyphRows } from './font.js';

/** An sRGB colour, each channel 0..255. */
export type Rgb = readonly [number, number, number];

/** A rectangle in pixels: top-left corner and size. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export const WHITE: Rgb = [255, 255, 255];
export const BLACK: Rgb = [0, 0, 0];

/** Where text is anchored horizontally relative to the x passed to {@link Canvas.text}. */
export type Align = 'left' | 'center' | 'right';

/** An opaque RGB raster, white to begin with. */
export class Canvas {
  readonly width: number;
  readonly height: number;
  /** RGB bytes, row-major, 3 per pixel. */
  readonly pixels: Uint8Array;
  /** Drawing outside this rectangle is discarded (the whole canvas unless set). */
  #clip: Rect;

  constructor(width: number, height: number, background: Rgb = WHITE) {
    this.width = width;
    this.height = height;
    this.pixels = new Uint8Array(width * height * 3);
    this.#clip = { x: 0, y: 0, w: width, h: height };
    this.fillRect({ x: 0, y: 0, w: width, h: height }, background);
  }

  /** Restricts drawing to `rect` (intersected with the canvas); `undefined` lifts the restriction. */
  setClip(rect?: Rect): void {
    const r = rect ?? { x: 0, y: 0, w: this.width, h: this.height };
    const x0 = Math.max(0, Math.floor(r.x));
    const y0 = Math.max(0, Math.floor(r.y));
    const x1 = Math.min(this.width, Math.ceil(r.x + r.w));
    const y1 = Math.min(this.height, Math.ceil(r.y + r.h));
    this.#clip = { x: x0, y: y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
  }

  /** Blends `color` over pixel (x, y) with opacity `alpha` in [0, 1]. */
  blend(x: number, y: number, color: Rgb, alpha = 1): void {
    const c = this.#clip;
    if (x < c.x || y < c.y || x >= c.x + c.w || y >= c.y + c.h || alpha <= 0) return;
    const i = (y * this.width + x) * 3;
    const a = alpha >= 1 ? 1 : alpha;
    const p = this.pixels;
    p[i] = Math.round(p[i] + (color[0] - p[i]) * a);
    p[i + 1] = Math.round(p[i + 1] + (color[1] - p[i + 1]) * a);
    p[i + 2] = Math.round(p[i + 2] + (color[2] - p[i + 2]) * a);
  }

  /** Fills a rectangle (integer pixel edges). */
  fillRect(rect: Rect, color: Rgb): void {
    const x0 = Math.round(rect.x);
    const y0 = Math.round(rect.y);
    const x1 = Math.round(rect.x + rect.w);
    const y1 = Math.round(rect.y + rect.h);
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) this.blend(x, y, color);
  }

  /** Draws a 1-pixel outline just inside `rect`. */
  strokeRect(rect: Rect, color: Rgb): void {
    const { x, y, w, h } = rect;
    this.fillRect({ x, y, w, h: 1 }, color);
    this.fillRect({ x, y: y + h - 1, w, h: 1 }, color);
    this.fillRect({ x, y, w: 1, h }, color);
    this.fillRect({ x: x + w - 1, y, w: 1, h }, color);
  }

  /**
   * An anti-aliased 1-pixel line (Xiaolin Wu's algorithm) between pixel centres. The segment is
   * first clipped to the clip rectangle so that far-off points (costs above the y range) cost
   * nothing.
   */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb): void {
    const c = this.#clip;
    const clipped = clipSegment(x0, y0, x1, y1, c.x - 1, c.y - 1, c.x + c.w, c.y + c.h);
    if (!clipped) return;
    [x0, y0, x1, y1] = clipped;
    const steep = Math.abs(y1 - y0) > Math.abs(x1 - x0);
    const plot = steep
      ? (a: number, b: number, alpha: number) => this.blend(b, a, color, alpha)
      : (a: number, b: number, alpha: number) => this.blend(a, b, color, alpha);
    if (steep) [x0, y0, x1, y1] = [y0, x0, y1, x1];
    if (x0 > x1) [x0, y0, x1, y1] = [x1, y1, x0, y0];
    const dx = x1 - x0;
    const gradient = dx === 0 ? 1 : (y1 - y0) / dx;
    const xStart = Math.round(x0);
    const xEnd = Math.round(x1);
    let y = y0 + gradient * (xStart - x0);
    for (let x = xStart; x <= xEnd; x++) {
      const base = Math.floor(y);
      const frac = y - base;
      plot(x, base, 1 - frac);
      plot(x, base + 1, frac);
      y += gradient;
    }
  }

  /** Width in pixels of `text` drawn at `scale`. */
  static textWidth(text: string, scale = 1): number {
    return text.length * GLYPH_WIDTH * scale;
  }

  /** Height in pixels of one line of text at `scale`. */
  static textHeight(scale = 1): number {
    return GLYPH_HEIGHT * scale;
  }

  /**
   * Draws one line of text with its glyph cells' top edge at `y`, anchored at `x` by `align`.
   * `bold` overstrikes each glyph one pixel to the right.
   */
  text(x: number, y: number, text: string, color: Rgb = BLACK, options: { align?: Align; scale?: number; bold?: boolean } = {}): void {
    const scale = options.scale ?? 1;
    const width = Canvas.textWidth(text, scale);
    const left = Math.round(options.align === 'center' ? x - width / 2 : options.align === 'right' ? x - width : x);
    const top = Math.round(y);
    for (let k = 0; k < text.length; k++) {
      const rows = glyphRows(text[k]);
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        let bits = rows[r];
        if (options.bold) bits |= bits >> 1;
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (!(bits & (0x80 >> col))) continue;
          const px = left + (k * GLYPH_WIDTH + col) * scale;
          this.fillRect({ x: px, y: top + r * scale, w: scale, h: scale }, color);
        }
      }
    }
  }

  /**
   * Draws text turned 90 degrees counter-clockwise (read from bottom to top, as a y-axis label),
   * centred vertically on `cy`, its glyphs' top edge at column `x`.
   */
  textVertical(x: number, cy: number, text: string, color: Rgb = BLACK): void {
    const length = Canvas.textWidth(text);
    const bottom = Math.round(cy + length / 2);
    const left = Math.round(x);
    for (let k = 0; k < text.length; k++) {
      const rows = glyphRows(text[k]);
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (rows[r] & (0x80 >> col)) this.blend(left + r, bottom - (k * GLYPH_WIDTH + col) - 1, color);
        }
      }
    }
  }

  /**
   * Draws a greyscale image (bytes, row-major, `cols` wide) with each pixel as a `scale` x `scale`
   * square, mapping 0 to white and 255 to black (matplotlib's `cmap='Greys'`, as the seed shows digits).
   */
  greysImage(x: number, y: number, image: ArrayLike<number>, rows: number, cols: number, scale: number): void {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = 255 - Math.max(0, Math.min(255, Math.round(image[r * cols + c])));
        this.fillRect({ x: x + c * scale, y: y + r * scale, w: scale, h: scale }, [v, v, v]);
      }
    }
  }

  /** The canvas as PNG file bytes (8-bit RGB, no alpha). */
  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    png.data = Buffer.from(this.pixels.buffer, this.pixels.byteOffset, this.pixels.byteLength);
    return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false, deflateLevel: 9 });
  }
}

/**
 * Liang-Barsky clipping of the segment (x0, y0)-(x1, y1) to the box [xmin, xmax] x [ymin, ymax];
 * `undefined` when nothing of it is inside.
 */
export function clipSegment(
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  xmin: number,
  ymin: number,
  xmax: number,
  ymax: number,
): [number, number, number, number] | undefined {
  const dx = x1 - x0;
  const dy = y1 - y0;
  let t0 = 0;
  let t1 = 1;
  const edges: [number, number][] = [
    [-dx, x0 - xmin],
    [dx, xmax - x0],
    [-dy, y0 - ymin],
    [dy, ymax - y0],
  ];
  for (const [p, q] of edges) {
    if (p === 0) {
      if (q < 0) return undefined;
      continue;
    }
    const t = q / p;
    if (p < 0) {
      if (t > t1) return undefined;
      if (t > t0) t0 = t;
    } else {
      if (t < t0) return undefined;
      if (t < t1) t1 = t;
    }
  }
  return [x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy];
}
