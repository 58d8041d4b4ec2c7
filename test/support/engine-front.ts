/**
 * A TCP front for the Docker Engine's unix socket: what the real daemon cannot be made to do on
 * demand (break off mid-export or mid-load, see its name taken just as a load arrives) happens
 * here, between slipway and the real daemon. Point DOCKER_HOST (or a daemon `host` option) at
 * `host`.
 * @module
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface EngineFrontOptions {
  /**
   * Each chunk the client sends, before it goes on: `pass`, `cut` (both sides are closed), or a
   * promise that chunk and all after it wait for.
   */
  onClientData?: (chunk: Buffer) => 'pass' | 'cut' | Promise<void>;
  /** Close both sides once the daemon has sent more than this many bytes on a connection. */
  cutAfterDaemonBytes?: number;
}

export interface EngineFront {
  /** `tcp://127.0.0.1:PORT` */
  host: string;
  close(): void;
}

/** Whether a client chunk starts a `POST /…/images/load` request. */
export function isLoadRequest(chunk: Buffer): boolean {
  return /^POST \S*\/images\/load/m.test(chunk.toString('latin1', 0, Math.min(chunk.length, 1024)));
}

/** The front, or undefined when DOCKER_HOST names no unix socket to put it before. */
export async function startEngineFront(options: EngineFrontOptions = {}): Promise<EngineFront | undefined> {
  const dockerHost = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  if (!dockerHost.startsWith('unix://')) return undefined;
  const socketPath = dockerHost.slice('unix://'.length);
  const sockets: Socket[] = [];
  const front = createServer((client) => {
    const daemonSide = connect(socketPath);
    sockets.push(client, daemonSide);
    const cut = (): void => {
      client.destroy();
      daemonSide.destroy();
    };
    let held: Buffer[] | undefined;
    client.on('data', (chunk: Buffer) => {
      if (held) return void held.push(chunk);
      const verdict = options.onClientData?.(chunk) ?? 'pass';
      if (verdict === 'cut') return cut();
      if (verdict === 'pass') return void daemonSide.write(chunk);
      held = [chunk];
      void verdict.then(() => {
        for (const part of held!) daemonSide.write(part);
        held = undefined;
      });
    });
    let fromDaemon = 0;
    daemonSide.on('data', (chunk: Buffer) => {
      fromDaemon += chunk.length;
      client.write(chunk);
      if (options.cutAfterDaemonBytes !== undefined && fromDaemon > options.cutAfterDaemonBytes) cut();
    });
    client.on('end', () => daemonSide.end());
    daemonSide.on('end', () => client.end());
    // Each side goes with the other: a daemon connection left open keeps the test process alive.
    client.on('close', () => daemonSide.destroy());
    daemonSide.on('close', () => client.destroy());
    client.on('error', () => daemonSide.destroy());
    daemonSide.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  return {
    host: `tcp://127.0.0.1:${(front.address() as AddressInfo).port}`,
    close: () => {
      front.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
