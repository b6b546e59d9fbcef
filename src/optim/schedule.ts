/** Learning-rate schedules: functions of the step index, applied with `schedule.apply(opt, step)`. */
import type { Optimizer } from './optimizer.js';

export interface Schedule {
  /** Learning rate at step `t` (0-based). */
  at(t: number): number;
}

export function applySchedule(s: Schedule, opt: Optimizer, t: number): void {
  opt.lr = s.at(t);
}

export const constantLr = (lr: number): Schedule => ({ at: () => lr });

/** Multiplies the rate by `gamma` every `stepSize` steps. */
export const stepLr = (lr: number, stepSize: number, gamma = 0.1): Schedule => ({ at: (t) => lr * gamma ** Math.floor(t / stepSize) });

/** Cosine decay from lr to minLr over `total` steps. */
export const cosineLr = (lr: number, total: number, minLr = 0): Schedule => ({
  at: (t) => minLr + 0.5 * (lr - minLr) * (1 + Math.cos((Math.PI * Math.min(t, total)) / total)),
});

/** Linear warm-up over `warmup` steps, then `after` (shifted so that it starts at step 0). */
export const warmup = (after: Schedule, warmupSteps: number): Schedule => ({
  at: (t) => (t < warmupSteps ? (after.at(0) * (t + 1)) / warmupSteps : after.at(t - warmupSteps)),
});
