/**
 * Command-line flags: a declarative spec per command, parsed by Node's built-in `util.parseArgs`
 * (no dependency), then checked and converted here so that every mistake becomes one short line
 * naming the flag, what it expects and what it got.
 */
import { parseArgs } from 'node:util';

/** How a flag's value is read. */
export type FlagType = 'boolean' | 'string' | 'integer' | 'number' | 'integers' | 'choice';

/** One flag of a command. */
export interface FlagSpec {
  type: FlagType;
  /** The help text (one line). */
  help: string;
  /** Placeholder for the value in the help, e.g. `N` or `DIR`. */
  value?: string;
  /** A one-letter alias, e.g. `o` for `-o`. */
  short?: string;
  /** The default, as shown in the help and used when the flag is absent. */
  default?: string | number | boolean | readonly number[];
  /** Smallest accepted number (integers, numbers, every element of integers). */
  min?: number;
  /** When true, `min` itself is not accepted. */
  minExclusive?: boolean;
  /** Largest accepted number. */
  max?: number;
  /** Accepted values of a `choice` flag. */
  choices?: readonly string[];
  /** Heading the flag is listed under in the help. */
  group?: string;
}

/** A subcommand: its flags and the text of its `--help`. */
export interface CommandSpec {
  name: string;
  /** One line for the command list of `mlp --help`. */
  summary: string;
  /** Paragraphs shown under the usage line. */
  description: string;
  flags: Readonly<Record<string, FlagSpec>>;
  examples: readonly (readonly [string, string])[];
  /** Extra paragraphs at the end of the help (exit codes, output). */
  notes?: string;
}

/** A mistake in how the command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    /** The command whose `--help` the message points to. */
    readonly command?: string,
  ) {
    super(message);
  }
}

/** A flag value after conversion. */
export type FlagValue = string | number | boolean | number[];

/** Parsed and checked flags of one command. */
export class Flags {
  constructor(
    private readonly spec: CommandSpec,
    private readonly values: ReadonlyMap<string, FlagValue>,
  ) {}

  /** True when the flag was given on the command line. */
  has(name: string): boolean {
    return this.values.has(name);
  }

  #get(name: string): FlagValue | undefined {
    if (!(name in this.spec.flags)) throw new Error(`internal: ${this.spec.name} has no flag --${name}`);
    if (this.values.has(name)) return this.values.get(name);
    const fallback = this.spec.flags[name].default;
    return Array.isArray(fallback) ? [...fallback] : (fallback as FlagValue | undefined);
  }

  string(name: string): string | undefined {
    const v = this.#get(name);
    return v === undefined ? undefined : String(v);
  }

  number(name: string): number | undefined {
    const v = this.#get(name);
    return typeof v === 'number' ? v : undefined;
  }

  boolean(name: string): boolean {
    return this.#get(name) === true;
  }

  integers(name: string): number[] | undefined {
    const v = this.#get(name);
    if (typeof v === 'number') return [v];
    return Array.isArray(v) ? v : undefined;
  }
}

function flagLabel(name: string): string {
  return `--${name}`;
}

function rangeText(spec: FlagSpec, what: string): string {
  const parts: string[] = [];
  if (spec.min !== undefined) parts.push(`${spec.minExclusive ? '>' : '>='} ${spec.min}`);
  if (spec.max !== undefined) parts.push(`<= ${spec.max}`);
  return parts.length ? `${what} ${parts.join(' and ')}` : what;
}

function checkRange(name: string, spec: FlagSpec, n: number, raw: string, what: string): number {
  const low = spec.min !== undefined && (spec.minExclusive ? n <= spec.min : n < spec.min);
  const high = spec.max !== undefined && n > spec.max;
  if (low || high) throw new UsageError(`${flagLabel(name)} expects ${rangeText(spec, what)}, got ${JSON.stringify(raw)}`);
  return n;
}

/** `Number()` is too lenient (it accepts '', '0x10', ' 1 '); accept plain decimal notation only. */
const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function toNumber(name: string, spec: FlagSpec, raw: string, integer: boolean): number {
  const what = integer ? 'an integer' : 'a number';
  const n = NUMBER_RE.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
    throw new UsageError(`${flagLabel(name)} expects ${rangeText(spec, what)}, got ${JSON.stringify(raw)}`);
  }
  return checkRange(name, spec, n, raw, what);
}

function convert(name: string, spec: FlagSpec, raw: string | boolean): FlagValue {
  if (spec.type === 'boolean') return raw === true;
  const text = String(raw);
  switch (spec.type) {
    case 'string':
      if (text === '') throw new UsageError(`${flagLabel(name)} needs a non-empty value`);
      return text;
    case 'integer':
      return toNumber(name, spec, text, true);
    case 'number':
      return toNumber(name, spec, text, false);
    case 'integers': {
      const parts = text.split(',');
      if (parts.some((p) => p.trim() === '')) {
        throw new UsageError(`${flagLabel(name)} expects integers separated by commas (e.g. 100,50), got ${JSON.stringify(text)}`);
      }
      return parts.map((p) => toNumber(name, spec, p.trim(), true));
    }
    case 'choice': {
      const choices = spec.choices ?? [];
      if (!choices.includes(text)) {
        throw new UsageError(`${flagLabel(name)} expects one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
      }
      return text;
    }
  }
}

/** Levenshtein distance, to suggest the flag a typo meant. */
function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const keep = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = keep;
    }
  }
  return prev[b.length];
}

function suggestion(option: string, spec: CommandSpec): string {
  const wanted = option.replace(/^-+/, '').split('=')[0];
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of [...Object.keys(spec.flags), 'help']) {
    const d = editDistance(wanted, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(wanted.length / 3)) ? ` (did you mean --${best}?)` : '';
}

/** Turns `util.parseArgs`'s (sometimes multi-line) errors into one line about the flag. */
function parseError(error: unknown, spec: CommandSpec): UsageError {
  const e = error as { code?: string; message?: string };
  const message = String(e.message ?? error);
  const option = /--[\w-]+/.exec(message)?.[0] ?? /'(-[^' ,]*)/.exec(message)?.[1] ?? '';
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${option}${suggestion(option, spec)}`, spec.name);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const arg = /'([^']*)'/.exec(message)?.[1] ?? '';
      return new UsageError(`unexpected argument ${JSON.stringify(arg)} (options start with --)`, spec.name);
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(message)) return new UsageError(`${option} takes no value`, spec.name);
      return new UsageError(`${option} needs a value`, spec.name);
    default:
      return new UsageError(message.split('\n')[0], spec.name);
  }
}

/**
 * `util.parseArgs` rejects `--epochs -1` as ambiguous (the value looks like an option); join a
 * negative number to its flag (`--epochs=-1`) so the range check can say what is wrong with it.
 */
function joinNegativeNumbers(argv: readonly string[], spec: CommandSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    const flag = name !== undefined ? spec.flags[name] : undefined;
    if (flag && flag.type !== 'boolean' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** True when the arguments ask for help (`-h` or `--help` anywhere before a `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/**
 * Parses `argv` (the arguments after the command name) against `spec`.
 * @throws UsageError for an unknown flag, a missing or malformed value, or a stray argument.
 */
export function parseFlags(spec: CommandSpec, argv: readonly string[]): Flags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, flag] of Object.entries(spec.flags)) {
    options[name] = { type: flag.type === 'boolean' ? 'boolean' : 'string', ...(flag.short ? { short: flag.short } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: joinNegativeNumbers(argv, spec), options, strict: true, allowPositionals: false });
  } catch (error) {
    throw parseError(error, spec);
  }
  const values = new Map<string, FlagValue>();
  for (const [name, raw] of Object.entries(parsed.values)) {
    if (raw === undefined || Array.isArray(raw)) continue;
    try {
      values.set(name, convert(name, spec.flags[name], raw));
    } catch (error) {
      if (error instanceof UsageError) throw new UsageError(error.message, spec.name);
      throw error;
    }
  }
  return new Flags(spec, values);
}

function defaultText(flag: FlagSpec): string {
  if (flag.default === undefined || flag.default === false) return '';
  if (flag.default === true) return ' (default: on)';
  const shown = Array.isArray(flag.default) ? flag.default.join(',') : String(flag.default);
  return ` (default: ${shown})`;
}

/** Wraps `text` to `width` columns, indenting continuation lines by `indent` spaces. */
function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\n' + ' '.repeat(indent));
}

/** The text of `mlp <command> --help`. */
export function commandHelp(spec: CommandSpec): string {
  const out: string[] = [`Usage: mlp ${spec.name} [options]`, '', spec.description.trim(), ''];
  const groups = new Map<string, [string, FlagSpec][]>();
  for (const entry of Object.entries(spec.flags)) {
    const group = entry[1].group ?? 'Options';
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group)!.push(entry);
  }
  groups.set('Help', [['help', { type: 'boolean', short: 'h', help: 'show this help and exit' }]]);
  const column = 26;
  for (const [group, entries] of groups) {
    out.push(`${group}:`);
    for (const [name, flag] of entries) {
      const value = flag.type === 'boolean' ? '' : ` ${flag.value ?? 'VALUE'}`;
      const left = `  ${flag.short ? `-${flag.short}, ` : ''}--${name}${value}`;
      const text = wrap(`${flag.help}${defaultText(flag)}`, 80 - column, column);
      out.push(left.length + 2 <= column ? left.padEnd(column) + text : `${left}\n${' '.repeat(column)}${text}`);
    }
    out.push('');
  }
  if (spec.examples.length) {
    out.push('Examples:');
    for (const [command, what] of spec.examples) out.push(`  ${command}`, `      ${what}`);
    out.push('');
  }
  if (spec.notes) out.push(spec.notes.trim(), '');
  return out.join('\n');
}
