// Real servers in tests listen on 127.0.0.1 only, on a port the system picks,
// and close with every connection they still hold.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Closes `server` and every connection it still holds; resolves once it is closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** Starts `server` on 127.0.0.1 at a free port; resolves to its base URL and a `close()`. */
export async function listenOnLoopback(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => closeServer(server) };
}
