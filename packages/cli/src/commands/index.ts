/**
 * The command table. Each command lives in its own file and registers here with one line.
 * @module
 */
import type { Command } from '../command.js';

export const commands: Record<string, () => Promise<Command>> = {
  // copy: async () => (await import('./copy.js')).copy,
};
