// The core's answers to commands, as the contract shapes them: results, not thrown errors.
import type { Result } from '../../preload/contract.ts';

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = (code: string, message: string): Result<never> => ({ ok: false, error: { code, message } });
