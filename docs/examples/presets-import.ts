// One import for every module, and the presets.
import { circuitBreaker, pipeline, presets, retry } from 'bulwark';

export const custom = pipeline(retry({ maxAttempts: 2 }), circuitBreaker());
export const db = presets.databaseClient();
