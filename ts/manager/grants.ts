/**
 * Binary-signing keys and the grants that hand them to recipes (`recipes-and-farm.md` §7.7), and
 * the sandbox grants (network, extra binds) of the same `[[grant]]` tables.
 * Recipes are public, so the farm decides which recipe may use which key: a recipe without a grant
 * gets no flags and its `[[sign]]` stanzas fail the build (fail closed). Every key is loaded at
 * start-up so that a bad key stops the daemon instead of failing builds one by one.
 */

import { checkGrantPath } from '../build/sandbox.js';
import type { BuildUser } from '../build/script.js';
import { signingKeyFlag } from '../flags.js';
import { signingKeyInfo } from '../native.js';
import type { Config } from './config.js';
import type { RosterRecipe } from './roster.js';

export interface Grants {
  /** The extra `peipkg-build build` flags for a recipe: its `inject_pubkey` keys, then its `sign` keys (§7.7 order), then its sandbox grants. */
  flagsFor(recipe: string): string[];
  /** Key names a recipe's `[[sign]]` stanzas use that no grant gives it. */
  ungrantedKeys(recipe: RosterRecipe): string[];
  /** The same grants for a job sent to a worker: public keys as values, signing keys by name only. */
  payloadGrants(recipe: string): PayloadGrants;
}

export interface PayloadGrants {
  env: string[];
  sign: string[];
  network: boolean;
  binds: Array<{ path: string; writable: boolean }>;
}

/**
 * Loads every `[[signing_key]]` and works out the public keys to inject. As root, a key must also
 * be out of the build user's reach (owned by someone else, mode 0600 or stricter): build scripts
 * run as that user and must never be able to read a private key.
 */
export async function loadGrants(config: Config, buildUser: BuildUser | undefined): Promise<Grants> {
  const publicHex = new Map<string, string>();
  for (const key of config.signingKeys) {
    const loaded = await signingKeyFlag(key.private, `[[signing_key]] ${key.name}: private`, buildUser !== undefined, buildUser?.uid);
    publicHex.set(key.name, signingKeyInfo(loaded).publicKey.toString('hex'));
  }
  const keys = new Map(config.signingKeys.map((k) => [k.name, k]));
  const flags = new Map<string, string[]>();
  const signable = new Map<string, Set<string>>();
  const payloads = new Map<string, PayloadGrants>();
  for (const grant of config.grants) {
    payloads.set(grant.recipe, {
      env: grant.injectPubkey.map((name) => `${keys.get(name)?.pubkeyEnv}=${publicHex.get(name)}`),
      sign: [...grant.sign],
      network: grant.network,
      binds: grant.binds.map((b) => ({ ...b })),
    });
    const out: string[] = [];
    for (const name of grant.injectPubkey) out.push('--build-env', `${keys.get(name)?.pubkeyEnv}=${publicHex.get(name)}`);
    for (const name of grant.sign) out.push('--binary-sign-key', `${name}=${keys.get(name)?.private}`);
    if (grant.network) out.push('--network');
    for (const bind of grant.binds) {
      // A path missing now would fail every build of the recipe: refuse to start instead.
      await checkGrantPath(bind.path, `[[grant]] ${grant.recipe}: ${bind.writable ? 'bind' : 'ro_bind'}`);
      out.push(bind.writable ? '--bind' : '--ro-bind', bind.path);
    }
    flags.set(grant.recipe, out);
    signable.set(grant.recipe, new Set(grant.sign));
  }
  return {
    flagsFor: (recipe) => flags.get(recipe) ?? [],
    payloadGrants: (recipe) => payloads.get(recipe) ?? { env: [], sign: [], network: false, binds: [] },
    ungrantedKeys: (entry) => [...new Set(entry.recipe.signs.map((s) => s.key))].filter((k) => !signable.get(entry.id)?.has(k)),
  };
}
