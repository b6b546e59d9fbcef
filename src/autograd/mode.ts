/** Whether ops record the graph. Off inside `noGrad` and while running backward formulas. */
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

/** Runs `fn` without recording operations for autograd (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

export function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = enabled;
  enabled = on;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/** The op whose backward is being recorded for higher-order gradients (createGraph), if any. */
let recordingBackwardOf: string | null = null;

export function recordingBackward(): string | null {
  return recordingBackwardOf;
}

/** Runs an op's backward formula while its ops are recorded (createGraph). */
export function withRecordedBackward<T>(op: string, fn: () => T): T {
  const prev = recordingBackwardOf;
  recordingBackwardOf = op;
  try {
    return withGradMode(true, fn);
  } finally {
    recordingBackwardOf = prev;
  }
}
