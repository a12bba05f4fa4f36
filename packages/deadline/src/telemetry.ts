import { Telemetry } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/deadline', '0.1.0');
