// An HTTP proxy in front of a real registry that forwards everything and injects faults on demand:
// 5xx, 429 with Retry-After, connection resets, truncated and corrupted bodies, delays. It records
// every request so tests can assert on traffic ("no more than 2 requests reached the destination").
//
//   const reg = await startRegistry();
//   const proxy = await startFaultProxy({ target: reg });
//   proxy.inject({ match: { method: 'PUT', path: /\/manifests\// }, fault: { status: 503 }, times: 1 });
//   // point the client at proxy.host instead of reg.host
import { Agent as HttpAgent, createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type Fault =
  /**
   * Answer with this status without contacting the registry (body: a distribution-style JSON error
   * with `code`, UNAVAILABLE by default, which clients take as temporary).
   */
  | { status: number; code?: string; retryAfter?: number | string; headers?: Record<string, string> }
  /**
   * Kill the client connection with a TCP reset:
   * - 'before-forward': as soon as the request arrives, the registry never sees it;
   * - 'before-response': the request IS forwarded and completed by the registry, then the answer is
   *   dropped (the "it happened but the client does not know" case, e.g. a manifest PUT);
   * - { afterBytes }: after sending the response headers and this many body bytes;
   * - { afterRequestBytes }: after receiving this many request-body bytes (an upload dying midway);
   *   those bytes were forwarded, then the upstream request is aborted too.
   */
  | { reset: 'before-forward' | 'before-response' | { afterBytes: number } | { afterRequestBytes: number } }
  /** Send headers and this many body bytes, then close the connection cleanly (FIN): a short read. */
  | { truncate: { afterBytes: number } }
  /** Flip (XOR 0xff) the response body byte at this offset; length and headers unchanged. */
  | { corrupt: { atByte: number } }
  /** Wait this long before forwarding (the request then proceeds normally). */
  | { delayMs: number }
  /**
   * Forward normally and add these headers to the registry's answer: for what a spec allows a
   * registry to say but neither distribution build says (e.g. `OCI-Chunk-Min-Length`).
   */
  | { addResponseHeaders: Record<string, string> };

export interface FaultMatch {
  /** HTTP method, case-insensitive. */
  method?: string;
  /** Tested against path + query (e.g. `/v2/repo/blobs/sha256:…`). A string must be contained. */
  path?: RegExp | string;
}

export interface FaultRule {
  match?: FaultMatch;
  fault: Fault;
  /** How many matching requests get the fault. Default 1; Infinity for all. */
  times?: number;
  /** Let this many matching requests through untouched first (e.g. fail only the 3rd blob GET). */
  skip?: number;
}

export interface InjectedFault {
  /** How many requests this fault has hit so far. */
  readonly hits: number;
  /** Hits left. */
  readonly remaining: number;
  remove(): void;
}

export interface ProxiedRequest {
  method: string;
  /** Path + query as sent by the client. */
  path: string;
  /** Final status the client saw; 0 when the connection was reset before any status. */
  status: number;
  /** Description of the injected fault, if any. */
  fault?: string;
  /** Whether the request reached the registry. */
  forwarded: boolean;
  /** Request headers; `authorization` is replaced by '<redacted>' (tests assert presence, not value). */
  headers: IncomingHttpHeaders;
  /** Request body bytes received from the client. */
  requestBytes: number;
  /** Response body bytes sent to the client. */
  responseBytes: number;
  startedAt: number;
  durationMs: number;
}

export interface StartFaultProxyOptions {
  /** The upstream: a TestRegistry or anything with `url` (and `caPath` for a TLS registry). */
  target: { url: string; caPath?: string } | string;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT` — use in place of the registry host. Always plain HTTP. */
  host: string;
  port: number;
  url: string;
  /** Every request seen, in arrival order (entries are updated when the response finishes). */
  readonly requests: ProxiedRequest[];
  inject(rule: FaultRule): InjectedFault;
  /** Remove all pending faults. */
  clearFaults(): void;
  /** Forget recorded requests. */
  clearRequests(): void;
  /** Recorded requests matching a filter (same shape as a fault match). */
  requestsMatching(match?: FaultMatch): ProxiedRequest[];
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate']);

function matches(match: FaultMatch | undefined, method: string, path: string): boolean {
  if (match === undefined) return true;
  if (match.method !== undefined && match.method.toUpperCase() !== method.toUpperCase()) return false;
  if (match.path !== undefined) {
    if (typeof match.path === 'string' ? !path.includes(match.path) : !match.path.test(path)) return false;
  }
  return true;
}

function describe(f: Fault): string {
  if ('status' in f) return `status ${f.status}`;
  if ('reset' in f) return `reset ${typeof f.reset === 'string' ? f.reset : JSON.stringify(f.reset)}`;
  if ('truncate' in f) return `truncate after ${f.truncate.afterBytes} bytes`;
  if ('corrupt' in f) return `corrupt byte ${f.corrupt.atByte}`;
  if ('addResponseHeaders' in f) return `add response headers ${Object.keys(f.addResponseHeaders).join(', ')}`;
  return `delay ${f.delayMs} ms`;
}

function redact(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...h };
  if (out.authorization !== undefined) out.authorization = '<redacted>';
  if (out.cookie !== undefined) out.cookie = '<redacted>';
  return out;
}

/** RST rather than FIN, like a middlebox or crashed peer. */
function resetSocket(socket: Socket | null | undefined): void {
  if (socket === null || socket === undefined || socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

interface ActiveRule { rule: FaultRule; skipLeft: number; left: number; hits: number }

export async function startFaultProxy(options: StartFaultProxyOptions): Promise<FaultProxy> {
  const targetUrl = new URL(typeof options.target === 'string' ? options.target : options.target.url);
  const caPath = typeof options.target === 'string' ? undefined : options.target.caPath;
  const ca = caPath !== undefined ? readFileSync(caPath, 'utf8') : undefined;
  const tlsUpstream = targetUrl.protocol === 'https:';
  const agent = tlsUpstream ? new HttpsAgent({ keepAlive: true, ca }) : new HttpAgent({ keepAlive: true });
  const rules: ActiveRule[] = [];
  const requests: ProxiedRequest[] = [];
  let proxyHost = '';

  function takeFault(method: string, path: string): Fault | undefined {
    for (const r of rules) {
      if (r.left <= 0 || !matches(r.rule.match, method, path)) continue;
      if (r.skipLeft > 0) { r.skipLeft -= 1; continue; }
      r.left -= 1;
      r.hits += 1;
      return r.rule.fault;
    }
    return undefined;
  }

  function rewriteLocation(value: string): string {
    // Distribution builds absolute upload URLs from the Host header (which we forward) or its own
    // address; either way the next PATCH/PUT must come back through the proxy.
    try {
      const u = new URL(value);
      if (u.host === targetUrl.host || u.host === proxyHost) return `http://${proxyHost}${u.pathname}${u.search}`;
    } catch {
      // relative Location: already resolves against the proxy
    }
    return value;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, rec: ProxiedRequest): Promise<void> {
    const fault = takeFault(rec.method, rec.path);
    if (fault !== undefined) rec.fault = describe(fault);
    const finish = (status: number): void => { rec.status = status; rec.durationMs = Date.now() - rec.startedAt; };

    if (fault !== undefined && 'status' in fault) {
      // Read the request body first so a client streaming an upload sees the error, not EPIPE.
      for await (const c of req) rec.requestBytes += (c as Buffer).length;
      const body = JSON.stringify({ errors: [{ code: fault.code ?? 'UNAVAILABLE', message: `injected fault: status ${fault.status}`, detail: null }] });
      const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...fault.headers };
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      res.writeHead(fault.status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
      rec.responseBytes = req.method === 'HEAD' ? 0 : Buffer.byteLength(body);
      return finish(fault.status);
    }
    if (fault !== undefined && 'reset' in fault && fault.reset === 'before-forward') {
      resetSocket(req.socket);
      return finish(0);
    }
    if (fault !== undefined && 'delayMs' in fault) await sleep(fault.delayMs);

    const headers: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    const upstream = (tlsUpstream ? httpsRequest : httpRequest)({
      protocol: targetUrl.protocol, hostname: targetUrl.hostname, port: targetUrl.port, method: req.method, path: rec.path, headers, agent,
    });
    rec.forwarded = true;
    const requestReset = fault !== undefined && 'reset' in fault && typeof fault.reset === 'object' && 'afterRequestBytes' in fault.reset
      ? fault.reset.afterRequestBytes : undefined;

    const done = new Promise<void>((resolve) => {
      upstream.on('error', () => {
        if (!res.headersSent) { res.writeHead(502, { 'content-type': 'text/plain' }); res.end('fault proxy: upstream error'); finish(502); } else resetSocket(req.socket);
        resolve();
      });
      upstream.on('response', (up) => {
        if (fault !== undefined && 'reset' in fault && fault.reset === 'before-response') {
          up.resume();
          up.on('end', () => { resetSocket(req.socket); finish(0); resolve(); });
          return;
        }
        const out: OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) {
          if (HOP_BY_HOP.has(k) || v === undefined) continue;
          out[k] = k === 'location' && typeof v === 'string' ? rewriteLocation(v) : v;
        }
        if (fault !== undefined && 'addResponseHeaders' in fault) Object.assign(out, fault.addResponseHeaders);
        res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
        rec.status = up.statusCode ?? 502;
        const cutAt = fault === undefined ? undefined
          : 'truncate' in fault ? fault.truncate.afterBytes
          : 'reset' in fault && typeof fault.reset === 'object' && 'afterBytes' in fault.reset ? fault.reset.afterBytes : undefined;
        const corruptAt = fault !== undefined && 'corrupt' in fault ? fault.corrupt.atByte : undefined;
        let sent = 0;
        let cut = false;
        up.on('data', (chunk: Buffer) => {
          if (cut) return;
          let c = chunk;
          if (corruptAt !== undefined && corruptAt >= sent && corruptAt < sent + c.length) {
            c = Buffer.from(c);
            c[corruptAt - sent] = c[corruptAt - sent]! ^ 0xff;
          }
          if (cutAt !== undefined && sent + c.length >= cutAt) {
            const part = c.subarray(0, cutAt - sent);
            cut = true;
            sent += part.length;
            rec.responseBytes = sent;
            up.destroy();
            const sock = req.socket;
            // Write what is allowed, then end the TCP connection under the HTTP response: the client
            // sees fewer bytes than Content-Length (or an unterminated chunked body).
            if (part.length > 0) res.write(part);
            if ('truncate' in fault!) { sock.end(); } else { setImmediate(() => resetSocket(sock)); }
            finish(rec.status);
            resolve();
            return;
          }
          sent += c.length;
          rec.responseBytes = sent;
          if (!res.write(c)) { up.pause(); res.once('drain', () => up.resume()); }
        });
        up.on('end', () => { if (!cut) { res.end(); finish(rec.status); resolve(); } });
        up.on('error', () => { if (!cut) { resetSocket(req.socket); finish(rec.status); resolve(); } });
      });
    });

    req.on('data', (c: Buffer) => {
      if (requestReset !== undefined && rec.requestBytes + c.length >= requestReset) {
        const part = c.subarray(0, Math.max(0, requestReset - rec.requestBytes));
        rec.requestBytes += part.length;
        if (part.length > 0) upstream.write(part);
        req.pause();
        upstream.destroy();
        resetSocket(req.socket);
        finish(0);
        return;
      }
      rec.requestBytes += c.length;
      if (!upstream.write(c)) { req.pause(); upstream.once('drain', () => req.resume()); }
    });
    req.on('end', () => upstream.end());
    req.on('aborted', () => upstream.destroy());
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    await done;
  }

  const server: Server = createServer((req, res) => {
    const rec: ProxiedRequest = {
      method: req.method ?? 'GET', path: req.url ?? '/', status: 0, forwarded: false, headers: redact(req.headers),
      requestBytes: 0, responseBytes: 0, startedAt: Date.now(), durationMs: 0,
    };
    requests.push(rec);
    handle(req, res, rec).catch(() => resetSocket(req.socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  server.unref(); // a forgotten stop() must not keep the test process alive
  proxyHost = `127.0.0.1:${port}`;
  let stopped = false;

  return {
    host: proxyHost,
    port,
    url: `http://${proxyHost}`,
    requests,
    inject(rule) {
      const r: ActiveRule = { rule, skipLeft: rule.skip ?? 0, left: rule.times ?? 1, hits: 0 };
      rules.push(r);
      return {
        get hits() { return r.hits; },
        get remaining() { return r.left; },
        remove() { r.left = 0; },
      };
    },
    clearFaults() { rules.length = 0; },
    clearRequests() { requests.length = 0; },
    requestsMatching(match) { return requests.filter((r) => matches(match, r.method, r.path)); },
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
