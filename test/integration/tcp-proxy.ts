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
   * comes. New connections are accepted and black-holed too. `cut()` ends it.
   */
  freeze(): void;
  /**
   * Forwards new connections again after `freeze()`. The connections that were
   * frozen stay black holes (bytes were lost on them): they never forward again.
   */
  thaw(): void;
  /**
   * Resets every open connection (a TCP RST to the client, as when the
   * server's host dies or a middlebox drops the flow), and keeps listening:
   * new connections reach the server. Resolves once the sockets are closed.
   */
  reset(): Promise<void>;
  /**
   * Closes every open connection (a FIN to the client, as when the server
   * process is killed), and keeps listening: new connections reach the server.
   */
  hangUp(): Promise<void>;
  /**
   * While on, every new connection is reset at once, as a server that is down
   * while its host still answers. Connections already open are not touched.
   */
  refuse(on: boolean): void;
  /**
   * Delays every byte from the server to the client by `ms` (0 forwards at
   * once again), on open and new connections; requests reach the server at
   * once: a server that acts at once but answers late.
   */
  delayReplies(ms: number): void;
  /**
   * While on, drops every byte from the server to the client, on open and new
   * connections, while requests still reach the server: the server acts, and
   * its answer is lost.
   */
  dropReplies(on: boolean): void;
  /** The connections open now. */
  readonly connections: number;
}

interface Link {
  readonly inbound: Socket;
  readonly outbound: Socket;
  frozen: boolean;
}

/** Closes both sides of every link, with a RST or a FIN to the client; resolves once they are closed. */
async function dropAll(links: Set<Link>, how: 'rst' | 'fin'): Promise<void> {
  const closed: Promise<void>[] = [];
  for (const { inbound, outbound } of links) {
    if (!inbound.destroyed) {
      closed.push(new Promise<void>((resolve) => inbound.once('close', () => resolve())));
      if (how === 'rst') inbound.resetAndDestroy();
      else inbound.destroy();
    }
    outbound.destroy();
  }
  links.clear();
  await Promise.all(closed);
}

export async function startProxy(host: string, port: number): Promise<TcpProxy> {
  const links = new Set<Link>();
  let frozen = false;
  let refusing = false;
  let replyDelayMs = 0;
  let droppingReplies = false;
  const server = createServer((inbound) => {
    if (refusing) {
      inbound.on('error', () => {});
      inbound.resetAndDestroy();
      return;
    }
    const outbound = createConnection({ host, port });
    const link: Link = { inbound, outbound, frozen };
    links.add(link);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
      links.delete(link);
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    // Forwards unless frozen; frozen bytes are dropped, as a black hole would.
    inbound.on('data', (chunk: Buffer) => {
      if (!link.frozen) outbound.write(chunk);
    });
    outbound.on('data', (chunk: Buffer) => {
      if (link.frozen || droppingReplies) return;
      if (replyDelayMs === 0) inbound.write(chunk);
      else
        setTimeout(() => {
          if (!inbound.destroyed && !link.frozen) inbound.write(chunk);
        }, replyDelayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const listening = (server.address() as { port: number }).port;
  return {
    port: listening,
    get connections() {
      return links.size;
    },
    freeze: () => {
      frozen = true;
      for (const link of links) link.frozen = true;
    },
    thaw: () => {
      frozen = false;
    },
    delayReplies: (ms) => {
      replyDelayMs = ms;
    },
    dropReplies: (on) => {
      droppingReplies = on;
    },
    refuse: (on) => {
      refusing = on;
    },
    reset: () => dropAll(links, 'rst'),
    hangUp: () => dropAll(links, 'fin'),
    cut: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const { inbound, outbound } of links) {
        inbound.destroy();
        outbound.destroy();
      }
      links.clear();
      await closed;
    },
  };
}
