// Test support: counts what would kill a relay process (an uncaught exception or an unhandled
// rejection) while a test runs the relay in-process.
export interface ProcessFaults {
  /** Every uncaught exception and unhandled rejection since `watchProcessFaults()`. */
  readonly faults: unknown[];
  stop(): void;
}

export function watchProcessFaults(): ProcessFaults {
  const faults: unknown[] = [];
  const onFault = (error: unknown) => faults.push(error);
  process.on('uncaughtException', onFault);
  process.on('unhandledRejection', onFault);
  return {
    faults,
    stop() {
      process.off('uncaughtException', onFault);
      process.off('unhandledRejection', onFault);
    },
  };
}
