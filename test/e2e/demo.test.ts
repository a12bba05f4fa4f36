// Runs `npm run demo` in its shortened mode, as a real process without a TTY,
// and checks what its summary says.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface Summary {
  client: string;
  requests: number;
  succeeded: number;
  failed: number;
  shed: number;
  serviceLoad: number;
  amplification: number;
  p50Ms: number;
  p99Ms: number;
  maxInFlight: number;
}

function runDemo(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=bulwark-source', 'demo/main.ts', '--quick', '--json'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const kill = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out });
    });
  });
}

describe('npm run demo', () => {
  it('drives the flaky service with both clients and prints a summary in which bulwark adds less load', async () => {
    const { code, out } = await runDemo();
    expect(code, out).toBe(0);
    // Without a TTY the live view is plain lines.
    expect(out).toMatch(/t=\d+\.\d+s phase=\S+ client=naive req\/s=\d+/);
    expect(out).toMatch(/client=bulwark .* breaker=(closed|open|half-open)/);
    expect(out).toContain('summary (');
    const line = out.split('\n').find((l) => l.startsWith('DEMO_SUMMARY '));
    expect(line, out).toBeDefined();
    const [naive, bulwark] = JSON.parse(line!.slice('DEMO_SUMMARY '.length)) as Summary[];
    expect(naive!.client).toBe('naive');
    expect(bulwark!.client).toBe('bulwark');
    // Both clients were offered the same logical requests, and every one was counted once.
    expect(naive!.requests).toBeGreaterThan(200);
    expect(bulwark!.requests).toBe(naive!.requests);
    for (const s of [naive!, bulwark!]) expect(s.succeeded + s.failed + s.shed).toBe(s.requests);
    // The outage makes the naive client hammer the service; bulwark's breaker and budget hold back.
    expect(naive!.amplification).toBeGreaterThan(1.5);
    expect(bulwark!.amplification).toBeLessThan(naive!.amplification);
    expect(bulwark!.serviceLoad).toBeLessThan(naive!.serviceLoad);
    expect(bulwark!.shed).toBeGreaterThan(0);
    // The deadline (1.5 s) bounds every bulwark request; allow for a busy machine.
    expect(bulwark!.p99Ms).toBeLessThan(2_500);
  }, 60_000);
});
