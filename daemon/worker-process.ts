/**
 * How the daemon starts its worker processes (training, explanations), wherever it was started from: in the
 * repository the modules are TypeScript and a worker runs through tsx, resolved from here (not from the current
 * folder); in the installed package they are compiled JavaScript and plain Node runs them.
 */
import { fileURLToPath } from 'node:url';

const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** Node's arguments to run the worker module `name` (without extension) beside the module at `beside`. */
export function workerArgs(beside: string, name: string): string[] {
  const script = fileURLToPath(new URL(`./${name}${FROM_SOURCES ? '.ts' : '.js'}`, beside));
  return FROM_SOURCES ? ['--import', import.meta.resolve('tsx'), script] : [script];
}
