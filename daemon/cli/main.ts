/** The `gptspam` command line: one sub-command module per area, wired here. */
import { Command } from 'commander';

const program = new Command('gptspam')
  .description('Self-hosted spam filter for e-mail and text messages, powered by a fine-tuned GPT-2 classifier')
  .showHelpAfterError();

await program.parseAsync(process.argv);
