import { VirtualClock } from '@bulwark/clock';
import { createFetch, type FetchFunction } from '@bulwark/fetch';

// Unit tests run on a VirtualClock with a scripted fetch underneath: no
// sockets, no real waits. Here the first attempt gets a 503 with Retry-After.
const clock = new VirtualClock();
let calls = 0;
const script: FetchFunction = async () =>
  ++calls === 1 ? new Response('busy', { status: 503, headers: { 'retry-after': '2' } }) : new Response('ok');

const fetch = createFetch({ clock, fetch: script });
const pending = fetch('http://service.test/');
await clock.advance(2_000); // the wait Retry-After asked for, in virtual time
const response = await pending;
export const text = await response.text(); // 'ok', after 2 attempts
