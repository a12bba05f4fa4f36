export {
  HEDGING_DEFAULTS,
  type HedgeDecision,
  type HedgeDelayMode,
  type HedgeDenial,
  type HedgeDeniedEvent,
  type HedgeEvent,
  HedgeLostError,
  type HedgeOn,
  type HedgeTrigger,
  type HedgingOptions,
  HedgingPolicy,
  hedging,
} from './hedging.ts';
