/** The daemon's commands: the model (train, eval, classify, model fetch/check), data, the daemon itself, its service unit. */
import type { Command } from 'commander';
import type { ConnectorFactory } from '../contract.ts';
import { registerDataCommands } from './data.ts';
import { registerFetchCommand } from './fetch.ts';
import { registerModelCommands } from './model-commands.ts';
import { registerServeCommand } from './serve.ts';
import { registerServiceCommand } from './service.ts';

export function registerDaemonCommands(program: Command, opts: { connectors: ConnectorFactory }): void {
  const model = program.command('model').description('GPT-2 weights: fetch, install, check');
  registerFetchCommand(model);
  registerModelCommands(program, model);
  registerDataCommands(program);
  registerServeCommand(program, opts.connectors);
  registerServiceCommand(program);
}
