/**
 * Whether the farm's repository can be published into. A damaged state (a truncated `repo.json`,
 * an index that no longer verifies) is not the fault of the build whose publish found it: while
 * it lasts, finished builds are held (`state_dir/held/<build id>/`) instead of failed, quarantined
 * and backed off; `/healthz` and `/status` name the damage; and the state is checked again every
 * `recheckMs` until it is repaired, when the held builds are published.
 *
 * The check is `peipkg-repo verify --mode metadata`'s own (verifyRepository), run in the daemon, so
 * the manager and the operator judge a state by the same rules.
 */

import { InputError } from '../errors.js';
import type { Logger } from '../log.js';
import { verifyRepository } from '../repo/verify.js';

export interface RepositoryDamage {
  /** What verify says, e.g. `load state: parse repo.json: Unexpected end of JSON input`. */
  error: string;
  /** The document it names, when it names one. */
  file?: string;
  since: string;
}

const DOCUMENT = /\b(repo\.json(?:\.sig)?|(?:index\/)?(?:active|archive)\.json(?:\.sig)?|keys\/[^\s:]+)/;

export class RepositoryHealth {
  private damage: RepositoryDamage | undefined;

  constructor(
    private readonly repoDir: string,
    private readonly log: Logger,
  ) {}

  current(): RepositoryDamage | undefined {
    return this.damage;
  }

  /** Verifies the state's metadata; records (and logs, once) damage found, or its repair. */
  async check(): Promise<RepositoryDamage | undefined> {
    let problem: string | undefined;
    try {
      problem = (await verifyRepository(this.repoDir, 'metadata', undefined)).issues[0];
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      problem = error.message;
    }
    if (problem === undefined) {
      if (this.damage) this.log.info('repository repaired; publishing resumes', { repo: this.repoDir });
      this.damage = undefined;
      return undefined;
    }
    const file = DOCUMENT.exec(problem)?.[1];
    if (!this.damage) this.log.error('repository damaged; publishing stops until it is repaired', { repo: this.repoDir, err: problem, ...(file ? { file } : {}) });
    this.damage = { error: problem, ...(file ? { file } : {}), since: this.damage?.since ?? new Date().toISOString() };
    return this.damage;
  }
}
