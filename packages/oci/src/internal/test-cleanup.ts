/**
 * For tests: the `node:http` servers and transports a test file starts, closed once its tests are
 * done (connections first, so `close` does not wait for keep-alive sockets). Only tests import this.
 * @module
 */
import type { Server } from 'node:http';
import { after } from 'node:test';
import type { Transport } from '../transport/transport.js';

export function closeAfterTests(): { servers: Server[]; transports: Transport[] } {
  const opened = { servers: [] as Server[], transports: [] as Transport[] };
  after(async () => {
    await Promise.all(opened.transports.map((t) => t.close()));
    for (const s of opened.servers) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });
  return opened;
}
