// The floor under createFetch(): what each thing it may add to a bare fetch()
// costs on this Node, on a loopback keep-alive server in this process, each
// call reading its 2-byte body. No target: the figures say which part of the
// fetch suite's ratio is the platform fetch's (undici's) own work for what
// any wrapper sends, and which steps are worth avoiding. Compared as the
// fetch suite compares: many short rounds, every subject once per round, the
// median over rounds of a subject's time over the bare fetch's in the same
// round.
import { pairedRatio, printTable, runSuite, type Subject } from '../harness.ts';
import { startLoopbackServer } from '../loopback.ts';

export async function run(): Promise<boolean> {
  const { url, stop } = await startLoopbackServer();

  const read = async (response: Promise<Response>): Promise<string> => (await response).text();
  const longLived = new AbortController().signal;
  const noop = (): void => {};
  const bare = 'bare fetch (body read with text())';
  const subjects: Subject[] = [
    { name: bare, call: () => read(fetch(url)) },
    {
      name: 'body read with arrayBuffer()',
      call: async () => (await fetch(url)).arrayBuffer(),
    },
    { name: '+ a new AbortSignal', call: () => read(fetch(url, { signal: new AbortController().signal })) },
    { name: '+ one long-lived AbortSignal', call: () => read(fetch(url, { signal: longLived })) },
    {
      name: '+ AbortSignal.any([a new signal])',
      call: () => read(fetch(url, { signal: AbortSignal.any([new AbortController().signal]) })),
    },
    { name: '+ 1 header (a record)', call: () => read(fetch(url, { headers: { 'x-retry-attempt': '1' } })) },
    {
      name: '+ 2 headers (a record)',
      call: () => read(fetch(url, { headers: { 'x-retry-attempt': '1', 'x-request-timeout-ms': '29990' } })),
    },
    {
      name: '+ 2 headers (a Headers)',
      call: () => {
        const headers = new Headers();
        headers.set('x-retry-attempt', '1');
        headers.set('x-request-timeout-ms', '29990');
        return read(fetch(url, { headers }));
      },
    },
    { name: 'a Request instead of the URL', call: () => read(fetch(new Request(url))) },
    {
      name: '+ a setTimeout() cleared when the body is read',
      call: async () => {
        const timer = setTimeout(noop, 30_000);
        try {
          return await read(fetch(url));
        } finally {
          clearTimeout(timer);
        }
      },
    },
  ];
  try {
    const result = await runSuite('fetch-floor', subjects, {
      batch: 300,
      rounds: 61,
      warmup: 1_000,
      statistic: 'median',
      cpu: true,
      order: 'shuffle',
    });
    const base = result.measurements.find((m) => m.name === bare)!;
    const rows = result.measurements
      .filter((m) => m.name !== bare)
      .map((m) => {
        const wall = pairedRatio(result, m.name, bare);
        const cpu = pairedRatio(result, m.name, bare, true);
        return [
          m.name,
          wall.median.toFixed(3),
          `${wall.q1.toFixed(3)}–${wall.q3.toFixed(3)}`,
          ((wall.median - 1) * base.nsPerCall).toFixed(0),
          cpu.median.toFixed(3),
        ];
      });
    printTable(`fetch-floor: time per call / bare fetch's in the same round (${result.rounds} rounds)`, [
      ['subject', 'median', 'quartiles', '≈ ns more', 'CPU median'],
      ...rows,
    ]);
    return true;
  } finally {
    stop();
  }
}
