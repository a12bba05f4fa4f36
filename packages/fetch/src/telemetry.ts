import { Telemetry } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/fetch', '0.1.0');
