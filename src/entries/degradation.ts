/**
 * `resource-guard/degradation`: the degradation controller and its levels.
 *
 * The same objects as the root entry (one instance of the library), without
 * loading the rest of it. Every name here is also exported by
 * `resource-guard`.
 *
 * @module
 */
export * from '../errors';
export { parseSize, sizeUnit, type Size } from '../size';
export {
  DegradationController,
  DEGRADATION_LEVELS,
  DEGRADATION_INPUTS,
  DEGRADATION_PRESETS,
  degradationLevelFor,
  levelIndex,
  isDegradationLevel,
  type DegradationLevel,
  type DegradationInput,
  type DegradationStatus,
  type DegradationResult,
  type DegradationCause,
  type DegradationChange,
  type DegradationEvents,
  type DegradationOptions,
  type DegradationThresholds,
  type DegradationMargins,
  type DegradationPreset,
  type DegradationPresetSettings,
  type DegradationActions,
  type DegradationStats,
  type LevelThresholds,
  type LevelActions,
  type ResolvedThresholds,
} from '../degradation';
