/** Lockstep's version (as `lockstep --version` prints it). Distributed jobs carry it: a worker runs only its own version's jobs. */
export const VERSION = '0.1.0';
