// A TCP proxy on loopback between a client and a real server, which a test can
// cut mid-run to simulate the server going away, without stopping the shared server.
import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Drops every connection and stops listening: new connections are refused. */
  cut(): Promise<void>;
  /**
   * Stops forwarding bytes but keeps every connection open, like a network
   * that silently drops packets: the client waits for an answer that never
   * comes. `cut()` ends it.
   */
  freeze(): void;
}

export async function startProxy(host: string, port: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createServer((inbound) => {
    const outbound = createConnection({ host, port });
    sockets.add(inbound);
    sockets.add(outbound);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    // Forwards unless frozen; frozen bytes are dropped, as a black hole would.
    inbound.on('data', (chunk: Buffer) => {
      if (!frozen) outbound.write(chunk);
    });
    outbound.on('data', (chunk: Buffer) => {
      if (!frozen) inbound.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const listening = (server.address() as { port: number }).port;
  return {
    port: listening,
    freeze: () => {
      frozen = true;
    },
    cut: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closed;
    },
  };
}
