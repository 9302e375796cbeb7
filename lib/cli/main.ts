#!/usr/bin/env node
/**
 * `mlp`: the command-line tool of neuralnet-mlp. Dispatches to `train`, `predict` and
 * `gradcheck`, and turns every error into one line on stderr with a non-zero exit status.
 */
import { type CommandSpec, UsageError, commandHelp, wantsHelp } from './args.js';
import { CliError, packageVersion } from './common.js';
import { gradcheck, gradcheckSpec } from './gradcheck.js';
import { predict, predictSpec } from './predict.js';
import { train, trainSpec } from './train.js';

const COMMANDS: readonly { spec: CommandSpec; run: (argv: readonly string[]) => Promise<number> }[] = [
  { spec: trainSpec, run: train },
  { spec: predictSpec, run: predict },
  { spec: gradcheckSpec, run: gradcheck },
];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length)) + 2;
  return [
    'Usage: mlp <command> [options]',
    '',
    "A multi-layer perceptron for the MNIST digits, after Raschka's NeuralNetMLP.",
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}${c.spec.summary}`),
    '',
    'Start with the seed\'s full run (about 1000 epochs; Ctrl-C stops early and keeps the results):',
    '  mlp train',
    'or a quick one:',
    '  mlp train --epochs 10 --subset 10000',
    '',
    "Run 'mlp <command> --help' for a command's options, 'mlp --version' for the version.",
    '',
  ].join('\n');
}

/** Prints `error` as one line (the library's own messages may add detail lines) and picks the exit status. */
function report(error: unknown): number {
  const write = (line: string) => process.stderr.write(`${line}\n`);
  if (error instanceof UsageError) {
    const help = error.command ? `mlp ${error.command} --help` : 'mlp --help';
    write(`mlp${error.command ? ` ${error.command}` : ''}: ${error.message} (see '${help}')`);
    return 2;
  }
  if (error instanceof CliError) {
    write(`mlp: ${error.message}`);
    return error.exitCode;
  }
  const e = error as { code?: unknown; message?: unknown; stack?: unknown } | null;
  const known = error instanceof TypeError || error instanceof RangeError || typeof e?.code === 'string';
  const message = typeof e?.message === 'string' ? e.message : String(error);
  write(known ? `mlp: ${message}` : `mlp: unexpected error: ${message}`);
  // A stack trace only on request: it helps us, not the person running the command.
  if (process.env.MLP_DEBUG && typeof e?.stack === 'string') write(e.stack);
  return 1;
}

/** Runs the command line `argv` (without `node` and the script); resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined) {
      process.stderr.write(mainHelp());
      return 2;
    }
    if (name === '--help' || name === '-h') {
      process.stdout.write(mainHelp());
      return 0;
    }
    if (name === '--version' || name === '-v') {
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    }
    if (name === 'help') {
      const topic = COMMANDS.find((c) => c.spec.name === rest[0]);
      if (rest[0] !== undefined && !topic) throw new UsageError(`unknown command ${JSON.stringify(rest[0])}; the commands are ${COMMANDS.map((c) => c.spec.name).join(', ')}`);
      process.stdout.write(topic ? commandHelp(topic.spec) : mainHelp());
      return 0;
    }
    const command = COMMANDS.find((c) => c.spec.name === name);
    if (!command) {
      const what = name.startsWith('-') ? `unknown option ${name}` : `unknown command ${JSON.stringify(name)}`;
      throw new UsageError(`${what}; the commands are ${COMMANDS.map((c) => c.spec.name).join(', ')}`);
    }
    if (wantsHelp(rest)) {
      process.stdout.write(commandHelp(command.spec));
      return 0;
    }
    try {
      return await command.run(rest);
    } catch (error) {
      // Shared helpers do not know which command called them; the help to point to is this one.
      if (error instanceof UsageError && !error.command) throw new UsageError(error.message, command.spec.name);
      throw error;
    }
  } catch (error) {
    return report(error);
  }
}

// Warnings (such as the library's notice that the addon is unavailable and the TypeScript backend
// is used) read as notes of this command, without Node's "(node:PID)" prefix and hint line.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  process.stderr.write(`mlp: note: ${warning.message}\n`);
});

// `mlp predict ... | head` closes our stdout early; that is not an error worth a message.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2));
