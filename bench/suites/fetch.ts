// createFetch() against the bare global fetch on a loopback keep-alive server,
// each call reading its small body. Side by side: p-retry around fetch (what
// many codebases do by hand), and the floor: a bare fetch sent with what
// createFetch() sends on every attempt, an AbortSignal and its two request
// headers, each alone and both together. No wrapper that sends the same
// request can go under the last of these. The server runs in this process, so
// its cost is in every subject alike.
//
// A loopback call's time swings from round to round by as much as the
// overhead being measured, and more while other processes share the machine.
// So the suite runs many short rounds, every subject once per round in an
// order drawn anew each round, and compares subjects round by round: the figure that
// matters, and the target, is the median over rounds of a subject's time over
// the bare fetch's time in the same round, printed with its quartiles. The
// CPU time of the process per call is measured too and compared the same way:
// it does not count the time the process waits for a core, so it moves less
// when the machine is busy (it includes the server's work, as the wall time
// does).
import { createFetch } from '@bulwark/fetch';
import pRetry from 'p-retry';
import { pairedRatio, printTable, runSuite, target } from '../harness.ts';
import { startLoopbackServer } from '../loopback.ts';

export async function run(): Promise<boolean> {
  const { url, stop } = await startLoopbackServer();

  const full = createFetch();
  const noKeyed = createFetch({ breakers: false, bulkheads: false });
  const read = async (response: Promise<Response>): Promise<string> => (await response).text();
  // What createFetch() adds to the wire with its defaults: the attempt number
  // and the time left (30 s less the 10 ms margin), and a signal undici follows.
  const headers = { 'x-retry-attempt': '1', 'x-request-timeout-ms': '29990' };

  const bare = 'bare fetch';
  const withSignal = 'bare fetch + signal';
  const withHeaders = 'bare fetch + 2 headers';
  const asSent = 'bare fetch + 2 headers + signal';
  const ours = 'bulwark createFetch()';
  const oursNoKeyed = 'bulwark createFetch() without breakers, bulkheads';
  const peer = 'p-retry(fetch, { retries: 2 })';
  try {
    const result = await runSuite(
      'fetch-loopback',
      [
        { name: bare, call: () => read(fetch(url)) },
        { name: withSignal, call: () => read(fetch(url, { signal: new AbortController().signal })) },
        { name: withHeaders, call: () => read(fetch(url, { headers })) },
        {
          name: asSent,
          call: () => read(fetch(url, { headers, signal: new AbortController().signal })),
        },
        { name: ours, call: () => read(full(url)) },
        { name: oursNoKeyed, call: () => read(noKeyed(url)) },
        { name: peer, call: () => read(pRetry(() => fetch(url), { retries: 2 })) },
      ],
      // Short rounds, many of them: a round then rarely straddles a change in
      // the machine's load, and the median has many to choose from.
      { batch: 500, rounds: 101, warmup: 2_000, statistic: 'median', cpu: true, order: 'shuffle' },
    );
    const rows = [ours, oursNoKeyed, peer, withSignal, withHeaders, asSent].map((name) => {
      const wall = pairedRatio(result, name, bare);
      const cpu = pairedRatio(result, name, bare, true);
      return [
        name,
        wall.median.toFixed(3),
        `${wall.q1.toFixed(3)}–${wall.q3.toFixed(3)}`,
        cpu.median.toFixed(3),
        `${cpu.q1.toFixed(3)}–${cpu.q3.toFixed(3)}`,
      ];
    });
    printTable(`fetch-loopback: time per call / bare fetch's in the same round (${result.rounds} rounds)`, [
      ['subject', 'median', 'quartiles', 'CPU median', 'CPU quartiles'],
      ...rows,
    ]);
    const overFloor = pairedRatio(result, ours, asSent);
    console.log(
      `createFetch() / bare fetch + 2 headers + signal (what it sends): ${overFloor.median.toFixed(3)} (quartiles ${overFloor.q1.toFixed(3)}–${overFloor.q3.toFixed(3)})`,
    );
    return target(
      'createFetch() time per loopback call <= 1.25 x bare fetch (median of per-round ratios)',
      pairedRatio(result, ours, bare).median,
      1.25,
    );
  } finally {
    stop();
  }
}
