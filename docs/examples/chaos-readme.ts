import { injectFault } from '@bulwark/chaos';
import { seededRandom } from '@bulwark/clock';

const fault = injectFault({ rate: 0.1, random: seededRandom(7) }); // 10% InjectedFaultError
export const value = await fault.execute(() => 'real').catch(() => 'injected');
fault.enabled = false; // switch off at run time
