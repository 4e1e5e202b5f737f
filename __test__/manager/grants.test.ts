/**
 * Binary-signing keys through the farm (`recipes-and-farm.md` §7.7): a granted recipe's binary is
 * signed with the farm's key and its build sees the public key it was granted, while build.sh
 * cannot open the private key named on its parent's command line; a recipe without a grant gets no
 * key and fails closed with the documented message; a key the build user could read stops start-up.
 */

import { chmod, chown, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { loadSigningKey, signingKeyInfo, verifyElf } from '../../ts/native.js';
import { buildRecords, makeFarm, makeUpstream, publishedIn, runOnce, verifyRepo, writeRecipe, type Farm } from '../helpers/farm.js';
import { tempDir } from '../helpers/fs.js';

const asRoot = process.getuid?.() === 0;

const RECIPE = `[meta]
build_script = "build.sh"

[[package]]
name = "tool"
architecture = "x86_64"
description = "A compiled program whose binary the farm signs."
files = ["usr/bin/tool", "usr/share/tool/**"]

[[sign]]
path = "usr/bin/tool"
key = "tcb"
`;

/**
 * Compiles the upstream's tool.c, records the injected public key, and hunts for the binary-signing
 * key: the path is on an ancestor's command line (peipkg-build's), so the only defence is that the
 * build user cannot open it.
 */
const BUILD_SH = `#!/bin/sh
set -eu
mkdir -p "$DESTDIR/usr/bin" "$DESTDIR/usr/share/tool"
cc -O1 -o "$DESTDIR/usr/bin/tool" "$SOURCE_DIR/tool.c"
echo "\${PKM_KACS_TCB_PUBKEY_HEX:-unset}" > "$DESTDIR/usr/share/tool/tcb.hex"
pid=$PPID
key=""
while [ "$pid" -gt 1 ] && [ -z "$key" ]; do
  key=$(tr '\\0' '\\n' < /proc/$pid/cmdline | grep -A1 -x -- --binary-sign-key | tail -n 1 | cut -d= -f2-)
  pid=$(awk '/^PPid:/ { print $2 }' /proc/$pid/status)
done
echo "$key" > "$DESTDIR/usr/share/tool/key-path"
if [ -n "$key" ] && cat "$key" > /dev/null 2>&1; then echo opened; else echo denied; fi > "$DESTDIR/usr/share/tool/probe"
`;

const KEYS = (key: string) => `[[signing_key]]
name = "tcb"
private = ${JSON.stringify(key)}
pubkey_env = "PKM_KACS_TCB_PUBKEY_HEX"
`;

interface SigningFarm {
  farm: Farm;
  key: string;
}

/** A farm watching an upstream that tags v1.0.0 of a C program, with the `tool` recipe and a TCB key (not yet granted). */
async function signingFarm(t: ExecutionContext): Promise<SigningFarm> {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0', { file: 'tool.c', content: '#include <stdio.h>\nint main(void) { puts("signed by the farm"); return 0; }\n' });
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, {
    id: 'tool',
    git: upstream.dir,
    toml: `${RECIPE}\n[upstream]\ngit = ${JSON.stringify(upstream.dir)}\ntag_pattern = "^v(\\\\d+\\\\.\\\\d+\\\\.\\\\d+)$"\npeios_revision = 1\n`,
    script: BUILD_SH,
  });
  const key = join(farm.root, 'tcb.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key]);
  await chmod(key, 0o600);
  return { farm, key };
}

test('a granted recipe is built through the farm with its binary signed, the public key injected, and the private key out of build.sh\'s reach', async (t) => {
  const { farm, key } = await signingFarm(t);
  await farm.writeConfig(`${KEYS(key)}\n[[grant]]\nrecipe = "tool"\ninject_pubkey = ["tcb"]\nsign = ["tcb"]\n`);
  const result = await runOnce(farm);
  t.is(result.exitCode, 0, result.stderr);
  const repo = join(farm.stateDir, 'repo');
  t.deepEqual(await publishedIn(repo), ['tool 1.0.0-1']);
  await verifyRepo(t, repo);

  const extracted = await tempDir(t);
  const archive = JSON.parse(await readFile(join(repo, 'index', 'archive.json'), 'utf8')) as { packages: Array<{ url: string }> };
  await execa('sh', ['-c', `zstd -dc "${join(repo, archive.packages[0]?.url ?? '')}" | tar -xf - -C "${extracted}"`]);
  const publicKey = signingKeyInfo(loadSigningKey(key)).publicKey;
  t.true(await verifyElf(join(extracted, 'usr/bin/tool'), publicKey), 'the published binary carries a .peios.sig made with the granted key');
  t.is((await execa(join(extracted, 'usr/bin/tool'))).stdout, 'signed by the farm', 'the signed binary still runs');
  const shared = (name: string): Promise<string> => readFile(join(extracted, 'usr/share/tool', name), 'utf8').then((s) => s.trim());
  t.is(await shared('tcb.hex'), publicKey.toString('hex'), 'inject_pubkey hands build.sh the raw public key in lowercase hex');
  t.is(await shared('key-path'), '', 'build.sh cannot see peipkg-build or the manager: its PID namespace holds only the sandbox');
  t.is(await shared('probe'), 'denied', 'nor open the key');
});

test('a recipe without a grant gets no key and fails closed with the documented message; nothing is published', async (t) => {
  const { farm, key } = await signingFarm(t);
  // The key exists and another recipe is granted it: that must not leak to this one.
  await farm.writeConfig(`${KEYS(key)}\n[[grant]]\nrecipe = "kernel"\ninject_pubkey = ["tcb"]\nsign = ["tcb"]\n`);
  const result = await runOnce(farm);
  t.is(result.exitCode, 1, 'a failed build fails the sweep');
  t.regex(result.stderr, /level=warn msg="recipe signs binaries with keys no \[\[grant\]\] gives it; its builds will fail" recipe=tool keys=tcb/);
  t.deepEqual(await publishedIn(join(farm.stateDir, 'repo')), []);
  const [record, ...more] = await buildRecords(farm);
  t.deepEqual(more, []);
  t.like(record, { recipe: 'tool', version: '1.0.0-1', state: 'failed', stage: 'build' });
  const log = await readFile(join(farm.stateDir, 'history', 'logs', `${record?.id}.log`), 'utf8');
  t.regex(log, /sign\[0\] usr\/bin\/tool: no signing key named "tcb" supplied \(need --binary-sign-key tcb=PATH\)/);
});

test('start-up refuses a binary-signing key that is no key, or that the build user could read, before anything is built', async (t) => {
  const { farm, key } = await signingFarm(t);
  const grant = '\n[[grant]]\nrecipe = "tool"\nsign = ["tcb"]\n';
  const cases: Array<{ title: string; prepare(): Promise<void>; message: RegExp }> = [
    {
      title: 'not a key',
      prepare: async () => {
        await farm.writeConfig(`${KEYS(join(farm.root, 'config.toml'))}${grant}`);
      },
      message: /\[\[signing_key\]\] tcb: private: .*config\.toml: not a signing key/,
    },
    {
      title: 'missing',
      prepare: async () => {
        await farm.writeConfig(`${KEYS(join(farm.root, 'nowhere.pem'))}${grant}`);
      },
      message: /\[\[signing_key\]\] tcb: private: open key .*nowhere\.pem: No such file/,
    },
  ];
  if (asRoot) {
    cases.push(
      {
        title: 'readable by others',
        prepare: async () => {
          await farm.writeConfig(`${KEYS(key)}${grant}`);
          await chmod(key, 0o644);
        },
        message: /\[\[signing_key\]\] tcb: private .*tcb\.pem is readable by group or others \(mode 0644\); run `chmod 600/,
      },
      {
        title: 'owned by the build user',
        prepare: async () => {
          await chmod(key, 0o600);
          const { stdout } = await execa('id', ['-u', 'peipkg-build']);
          await chown(key, Number(stdout), 0);
        },
        message: /\[\[signing_key\]\] tcb: private .*tcb\.pem is owned by the build user, so build scripts could read it/,
      },
    );
  }
  for (const c of cases) {
    await c.prepare();
    const result = await runOnce(farm);
    t.is(result.exitCode, 1, c.title);
    t.regex(result.stderr, c.message, c.title);
    t.false(await stat(join(farm.stateDir, 'repo', 'repo.json')).then(() => true, () => false), `${c.title}: no repository was created`);
    t.deepEqual(await buildRecords(farm), [], `${c.title}: nothing was built`);
  }
});
