/**
 * A TCP server on 127.0.0.1 that accepts connections and never answers: a TLS handshake to it, an
 * HTTP request or a proxy CONNECT waits until the client gives up. No real registry, daemon or
 * proxy can be made to hang like that on demand.
 * @module
 */
import { createServer, type Socket } from 'node:net';

export interface SilentServer {
  /** `127.0.0.1:PORT`. */
  host: string;
  port: number;
  /** The connections accepted so far, in order. */
  sockets: Socket[];
  /** Ends every accepted connection and stops listening. */
  close(): Promise<void>;
}

export async function silentServer(): Promise<SilentServer> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    // Reads (and drops) what the client sends, so the client's close shows here as 'close'.
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    port,
    sockets,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
