import { Telemetry } from '@bulwark/core';

export const telemetry = new Telemetry('@bulwark/deadline', '0.1.0');
