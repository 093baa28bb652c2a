/**
 * The `gptspam` command: the composition root, the one place that knows both the daemon and its connectors. The
 * daemon (daemon/) knows connectors only by their contract; connectors (connectors/) know the daemon only by it.
 */
import { Command } from 'commander';
import { createConnectors, registerConnectorCommands } from '../connectors/index.ts';
import { registerDaemonCommands } from '../daemon/cli/index.ts';

const program = new Command('gptspam')
  .description('Self-hosted spam filter for e-mail and text messages, powered by a fine-tuned GPT-2 classifier')
  .showHelpAfterError();
registerDaemonCommands(program, { connectors: createConnectors });
registerConnectorCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Expected failures (bad files, missing weights) are one clear line, not a stack trace.
  console.error(`gptspam: ${(err as Error).message}`);
  if (process.env.GPTSPAM_DEBUG) console.error(err);
  process.exitCode = 1;
}
