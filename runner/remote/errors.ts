import { UserError } from '../errors.js';

/** The remote did not answer (refused, reset, timed out, unknown host): worth retrying, then a clear message. */
export class RemoteUnavailable extends UserError {
  constructor(remote: string, description: string, why: string) {
    super(
      { message: `remote '${remote}' (${description}) cannot be reached: ${why}`, hint: "check the URL ('lockstep remote list') and that the server is up" },
      1,
    );
  }
}

/** The remote answered no: credentials or permissions. Retrying would not help. */
export class RemoteRefused extends UserError {
  constructor(remote: string, description: string, why: string) {
    super(
      { message: `remote '${remote}' (${description}) refused access: ${why}`, hint: 'check the credentials in the environment (never in .lockstep/config)' },
      1,
    );
  }
}

/** What a network failure says, in a word (the cause's code when there is one). */
export function networkReason(e: unknown): string {
  const err = e as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  return err.cause?.code ?? err.code ?? err.cause?.message ?? err.message ?? String(e);
}
