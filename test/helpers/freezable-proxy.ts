/**
 * A TCP proxy on loopback that can be frozen: while frozen, new connections are held (not passed
 * on) until it thaws. Tests put it in front of an agent to hold a controller's call mid-task.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FreezableProxy {
  address: string;
  /** Where connections go (settable after the target listens). */
  target: string;
  frozen: boolean;
  /** Connections held while frozen (waiting for a thaw). */
  held(): number;
  thaw(): void;
  close(): Promise<void>;
}

export async function startFreezableProxy(): Promise<FreezableProxy> {
  const sockets = new Set<Socket>();
  let waiting: Array<() => void> = [];
  const pass = (client: Socket) => {
    if (client.destroyed) return;
    const [host, port] = proxy.target.split(':');
    const upstream = connect(Number(port), host!);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    if (proxy.frozen) waiting.push(() => pass(client));
    else pass(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: FreezableProxy = {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    target: '',
    frozen: false,
    held: () => waiting.length,
    thaw() {
      proxy.frozen = false;
      const go = waiting;
      waiting = [];
      for (const f of go) f();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
