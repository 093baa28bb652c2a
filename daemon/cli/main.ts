/** The `gptspam` command line: one sub-command module per area, wired here. */
import { Command } from 'commander';
import { registerDataCommands } from './data.ts';
import { registerFetchCommand } from './fetch.ts';
import { registerModelCommands } from './model-commands.ts';
import { registerServeCommands } from './serve.ts';
import { registerServiceCommand } from './service.ts';

const program = new Command('gptspam')
  .description('Self-hosted spam filter for e-mail and text messages, powered by a fine-tuned GPT-2 classifier')
  .showHelpAfterError();

const model = program.command('model').description('GPT-2 weights: fetch, install, check');
registerFetchCommand(model);
registerModelCommands(program, model);
registerDataCommands(program);
registerServeCommands(program);
registerServiceCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Expected failures (bad files, missing weights) are one clear line, not a stack trace.
  console.error(`gptspam: ${(err as Error).message}`);
  if (process.env.GPTSPAM_DEBUG) console.error(err);
  process.exitCode = 1;
}
