// Error results in words a person understands. Main's messages are already written for
// people in most cases; a few codes deserve a more useful sentence.
import type { AppError, Result } from '../../../preload/contract.ts';

const WORDS: Record<string, string> = {
  E_ADDRESS: 'That address does not look right. Use host:port, for example 192.168.1.20:47800.',
  E_PROFILE: 'Choose a display name first.',
  E_UNKNOWN_PEER: 'Parley does not know this person yet.',
  E_SENDER: 'This window is not allowed to do that.',
  E_INTERNAL: 'Something went wrong inside Parley; the details are in its log.',
  E_IPC: 'Parley’s core did not answer.',
};

export function humanError(error: AppError): string {
  if (error.code === 'E_SCHEMA') return capitalize(error.message.replace(/^[\w.]+: /u, ''));
  return WORDS[error.code] ?? capitalize(error.message);
}

function capitalize(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return 'Something went wrong.';
  const sentence = trimmed[0]?.toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/u.test(sentence) ? sentence : `${sentence}.`;
}

/** A rejected promise (the bridge itself failed) as a typed error result. */
export function bridgeError(cause: unknown): AppError {
  console.error('parley bridge call failed', cause);
  return { code: 'E_IPC', message: 'Parley’s core did not answer.' };
}

/** Awaits a command, turning a broken bridge into an error result instead of a rejection. */
export async function settle<T>(promise: Promise<Result<T>>): Promise<Result<T>> {
  try {
    return await promise;
  } catch (cause) {
    return { ok: false, error: bridgeError(cause) };
  }
}
