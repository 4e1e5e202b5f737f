/**
 * Embedded binary signatures (`package-format.md` §7.5) on a real ELF64 built with cc: the section
 * readelf shows, a binary that still runs, a signature that verifies independently (Ed25519 over
 * SHA-256 of the file with the 65 bytes zeroed), refusals with reasons, and `[[sign]]` in a build
 * whose script cannot open the binary-signing key named on its parent's command line.
 */

import { createPublicKey, verify as nodeVerify, createHash } from 'node:crypto';
import { chmod, copyFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { loadSigningKey, signingKeyInfo, verifyElf } from '../../ts/native.js';
import { runTool } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { makeRecipe } from '../helpers/recipes.js';

const asRoot = process.getuid?.() === 0;

async function compile(t: ExecutionContext, dir: string, name = 'hello'): Promise<string> {
  const source = join(dir, `${name}.c`);
  await writeFile(source, '#include <stdio.h>\nint main(void) { puts("hello from a signed binary"); return 0; }\n');
  const out = join(dir, name);
  await execa('cc', ['-O1', '-o', out, source]);
  t.true((await stat(out)).size > 0);
  return out;
}

async function newKey(t: ExecutionContext): Promise<string> {
  const path = join(await tempDir(t), 'tcb.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path]);
  await chmod(path, 0o600);
  return path;
}

/** `.peios.sig`'s file offset and size, from readelf. */
async function sigSection(path: string): Promise<{ offset: number; size: number } | undefined> {
  const { stdout } = await execa('readelf', ['-S', '-W', path]);
  const line = stdout.split('\n').find((l) => l.includes('.peios.sig'));
  if (!line) return undefined;
  const fields = line.replace(/^.*\.peios\.sig\s+/, '').trim().split(/\s+/);
  return { offset: parseInt(fields[2]!, 16), size: parseInt(fields[3]!, 16) };
}

test('binary-sign appends .peios.sig; the binary runs and the signature verifies over the zeroed file', async (t) => {
  const dir = await tempDir(t);
  const binary = await compile(t, dir);
  await chmod(binary, 0o751);
  const before = await readFile(binary);
  const key = await newKey(t);
  const result = await runTool('peipkg-build', ['binary-sign', '--in', binary, '--key', key]);
  t.is(result.exitCode, 0, result.stderr);
  const section = await sigSection(binary);
  t.deepEqual(section && { size: section.size }, { size: 65 });
  t.is((await stat(binary)).mode & 0o7777, 0o751, 'permission bits are kept');
  t.regex((await execa(binary)).stdout, /hello from a signed binary/);
  const signed = await readFile(binary);
  t.true(signed.subarray(0, before.length).equals(before) || signed.length > before.length, 'original bytes are kept at the start');
  t.true(signed.subarray(0, 0x28).equals(before.subarray(0, 0x28)));
  const content = signed.subarray(section!.offset, section!.offset + 65);
  t.is(content[0], 0x01, 'version byte');
  const zeroed = Buffer.from(signed);
  zeroed.fill(0, section!.offset, section!.offset + 65);
  const digest = createHash('sha256').update(zeroed).digest();
  const info = signingKeyInfo(loadSigningKey(key));
  t.true(nodeVerify(null, digest, createPublicKey(info.publicKeyPem), content.subarray(1)));
  t.true(await verifyElf(binary, info.publicKey));
  await t.throwsAsync(execa('test', ['-e', `${binary}.peios-sig.tmp`]), undefined, 'no temporary file is left');
});

test('a second signing is refused, and nothing changes', async (t) => {
  const dir = await tempDir(t);
  const binary = await compile(t, dir);
  const key = await newKey(t);
  t.is((await runTool('peipkg-build', ['binary-sign', '--in', binary, '--key', key])).exitCode, 0);
  const once = await readFile(binary);
  const again = await runTool('peipkg-build', ['binary-sign', '--in', binary, '--key', key]);
  t.is(again.exitCode, 1);
  t.regex(again.stderr, /already carries a \.peios\.sig section/);
  t.true((await readFile(binary)).equals(once));
});

test('32-bit, big-endian and non-ELF files are refused with a clear message', async (t) => {
  const dir = await tempDir(t);
  const binary = await compile(t, dir);
  const key = await newKey(t);
  const variants: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['elf32', (b) => void (b[4] = 1), /is a 32-bit ELF; only little-endian ELF64 binaries can be signed/],
    ['bigendian', (b) => void (b[5] = 2), /is a big-endian ELF; only little-endian ELF64 binaries can be signed/],
    ['notelf', (b) => void b.write('#!/b', 0), /not an ELF file/],
    ['noshdr', (b) => void b.writeUInt16LE(0, 0x3c), /has no section header table/],
  ];
  for (const [name, edit, message] of variants) {
    const path = join(dir, name);
    const bytes = await readFile(binary);
    edit(bytes);
    await writeFile(path, bytes);
    const result = await runTool('peipkg-build', ['binary-sign', '--in', path, '--key', key]);
    t.is(result.exitCode, 1, name);
    t.regex(result.stderr, message, name);
    t.true((await readFile(path)).equals(bytes), `${name} is unchanged`);
  }
  const link = join(dir, 'link');
  await execa('ln', ['-s', binary, link]);
  const viaLink = await runTool('peipkg-build', ['binary-sign', '--in', link, '--key', key]);
  t.is(viaLink.exitCode, 1);
  t.regex(viaLink.stderr, /is a symlink/);
  const missing = await runTool('peipkg-build', ['binary-sign', '--in', binary]);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /--key is required/);
  const none = await runTool('peipkg-build', ['binary-sign']);
  t.is(none.exitCode, 1);
  t.regex(none.stderr, /--in and --key are required/);
});

test('[[sign]] signs a staged binary during build; build.sh cannot open the binary-signing key', async (t) => {
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const binary = await compile(t, work, 'tool');
  const source = join(work, 'src');
  await execa('mkdir', ['-p', source]);
  await copyFile(binary, join(source, 'tool'));
  const key = await newKey(t);
  await chmod(join(key, '..'), 0o755);
  const recipe = await makeRecipe(t, {
    id: 'tool',
    toml: `[meta]\nbuild_script = "build.sh"\n\n[[package]]\nname = "tool"\narchitecture = "x86_64"\nfiles = ["usr/bin/tool", "usr/share/tool/**"]\n\n[[sign]]\npath = "usr/bin/tool"\nkey = "tcb"\n`,
    script: [
      'set -eu',
      'install -D -m 0755 "$SOURCE_DIR/tool" "$DESTDIR/usr/bin/tool"',
      'mkdir -p "$DESTDIR/usr/share/tool"',
      // The test tells the script where the key is: the attack is opening it, not finding it.
      'key=$(cat "$SOURCE_DIR/key-path")',
      'if cat "$key" >/dev/null 2>&1; then echo opened; else echo denied; fi > "$DESTDIR/usr/share/tool/result"',
    ].join('\n'),
  });
  await writeFile(join(source, 'key-path'), key);
  const out = join(work, 'out');
  const result = await runTool('peipkg-build', ['build', '--recipe', recipe, '--source', source, '--version', '1.0-1', '--source-ref', 'x',
    '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', out, '--binary-sign-key', `tcb=${key}`]);
  t.is(result.exitCode, 0, result.stderr);
  const extracted = await tempDir(t);
  await execa('sh', ['-c', `zstd -dc "${join(out, 'tool_1.0-1_x86_64.peipkg')}" | tar -xf - -C "${extracted}"`]);
  t.true(await verifyElf(join(extracted, 'usr/bin/tool'), signingKeyInfo(loadSigningKey(key)).publicKey), 'the packaged binary is signed');
  // The sandbox hides the key; without it, running as the build user keeps it unreadable.
  if (asRoot) t.is((await readFile(join(extracted, 'usr/share/tool/result'), 'utf8')).trim(), 'denied');

  const unsigned = await runTool('peipkg-build', ['build', '--recipe', recipe, '--source', source, '--version', '1.0-1', '--source-ref', 'x',
    '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', join(work, 'out2')]);
  t.is(unsigned.exitCode, 1);
  t.regex(unsigned.stderr, /sign\[0\] usr\/bin\/tool: no signing key named "tcb" supplied \(need --binary-sign-key tcb=PATH\)/);
  const malformed = await runTool('peipkg-build', ['build', '--recipe', recipe, '--source', source, '--version', '1.0-1', '--source-ref', 'x',
    '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', join(work, 'out3'), '--binary-sign-key', 'tcb']);
  t.is(malformed.exitCode, 2);
  t.regex(malformed.stderr, /--binary-sign-key "tcb": expected NAME=PATH/);
});

/** The public half of a key made by `newKey`, as SPKI PEM, and its fingerprint. */
async function publicHalf(key: string, name = 'tcb.pub'): Promise<{ path: string; fingerprint: string }> {
  const path = join(key, '..', name);
  await execa('openssl', ['pkey', '-in', key, '-pubout', '-out', path]);
  return { path, fingerprint: signingKeyInfo(loadSigningKey(key)).fingerprint };
}

test('binary-sign --verify: valid with the signing key (exit 0, its fingerprint named); the file is not changed', async (t) => {
  const dir = await tempDir(t);
  const binary = await compile(t, dir);
  const key = await newKey(t);
  const pub = await publicHalf(key);
  t.is((await runTool('peipkg-build', ['binary-sign', '--in', binary, '--key', key])).exitCode, 0);
  const signed = await readFile(binary);
  const result = await runTool('peipkg-build', ['binary-sign', '--verify', binary, '--public-key', pub.path]);
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `${binary}: valid .peios.sig, signed by ${pub.fingerprint}\n`);
  t.is(result.stderr, '');
  const json = await runTool('peipkg-build', ['binary-sign', '--verify', binary, '--public-key', pub.path, '--json']);
  t.is(json.exitCode, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), { path: binary, valid: true, fingerprint: pub.fingerprint });
  // Of several candidate keys, the one that verifies is named.
  const other = await publicHalf(await newKey(t), 'other.pub');
  const either = await runTool('peipkg-build', ['binary-sign', '--verify', binary, '--public-key', other.path, '--public-key', pub.path]);
  t.is(either.exitCode, 0, either.stderr);
  t.regex(either.stdout, new RegExp(`signed by ${pub.fingerprint}\\n$`));
  t.true((await readFile(binary)).equals(signed), 'verifying changes nothing');
  await t.throwsAsync(execa('test', ['-e', `${binary}.peios-sig.tmp`]));
});

test('binary-sign --verify: another key, a changed byte, an unsigned binary and a non-ELF file are invalid (exit 1) and say why', async (t) => {
  const dir = await tempDir(t);
  const binary = await compile(t, dir);
  const key = await newKey(t);
  const pub = await publicHalf(key);
  const unsigned = join(dir, 'unsigned');
  await copyFile(binary, unsigned);
  t.is((await runTool('peipkg-build', ['binary-sign', '--in', binary, '--key', key])).exitCode, 0);
  const other = await publicHalf(await newKey(t), 'other.pub');

  const wrong = await runTool('peipkg-build', ['binary-sign', '--verify', binary, '--public-key', other.path]);
  t.is(wrong.exitCode, 1);
  t.is(wrong.stdout, `${binary}: INVALID: the .peios.sig signature does not verify with the key ${other.fingerprint} (signed with another key, or the file was changed after signing)\n`);
  const wrongJson = await runTool('peipkg-build', ['binary-sign', '--verify', binary, '--public-key', other.path, '--json']);
  t.is(wrongJson.exitCode, 1);
  t.like(JSON.parse(wrongJson.stdout), { path: binary, valid: false, fingerprints: [other.fingerprint] });

  const tampered = join(dir, 'tampered');
  const bytes = await readFile(binary);
  bytes[0x100] = bytes[0x100]! ^ 0xff;
  await writeFile(tampered, bytes);
  const changed = await runTool('peipkg-build', ['binary-sign', '--verify', tampered, '--public-key', pub.path]);
  t.is(changed.exitCode, 1);
  t.regex(changed.stdout, /tampered: INVALID: the \.peios\.sig signature does not verify/);

  const none = await runTool('peipkg-build', ['binary-sign', '--verify', unsigned, '--public-key', pub.path]);
  t.is(none.exitCode, 1);
  t.is(none.stdout, `${unsigned}: INVALID: has no .peios.sig section (it was not signed with binary-sign or a [[sign]] stanza)\n`);
  const noneJson = await runTool('peipkg-build', ['binary-sign', '--verify', unsigned, '--public-key', pub.path, '--json']);
  t.is(noneJson.exitCode, 1);
  t.like(JSON.parse(noneJson.stdout), { valid: false, problem: 'has no .peios.sig section (it was not signed with binary-sign or a [[sign]] stanza)' });

  const text = join(dir, 'notes.txt');
  await writeFile(text, 'not a binary');
  const notElf = await runTool('peipkg-build', ['binary-sign', '--verify', text, '--public-key', pub.path]);
  t.is(notElf.exitCode, 1);
  t.regex(notElf.stdout, /notes\.txt: INVALID: not an ELF file/);
  for (const r of [wrong, changed, none, notElf]) t.notRegex(r.stderr, /\n\s+at /);
});

test('binary-sign --verify: without --public-key, or mixed with --in/--key, is refused with advice; nothing is written', async (t) => {
  const dir = await tempDir(t);
  const binary = await compile(t, dir);
  const key = await newKey(t);
  const pub = await publicHalf(key);
  const before = await readFile(binary);
  const noKey = await runTool('peipkg-build', ['binary-sign', '--verify', binary]);
  t.is(noKey.exitCode, 1);
  t.regex(noKey.stderr, /--public-key is required with --verify: a \.peios\.sig section does not say which key made it/);
  const mixed = await runTool('peipkg-build', ['binary-sign', '--verify', binary, '--key', key, '--public-key', pub.path]);
  t.is(mixed.exitCode, 2);
  t.regex(mixed.stderr, /--verify checks an existing signature and --key is for signing: give one or the other/);
  const both = await runTool('peipkg-build', ['binary-sign', '--verify', binary, '--in', binary, '--key', key]);
  t.is(both.exitCode, 2);
  t.regex(both.stderr, /--in and --key are for signing/);
  const stray = await runTool('peipkg-build', ['binary-sign', '--in', binary, '--key', key, '--public-key', pub.path]);
  t.is(stray.exitCode, 2);
  t.regex(stray.stderr, /--public-key is for --verify/);
  for (const r of [noKey, mixed, both, stray]) t.is(r.stdout, '');
  t.true((await readFile(binary)).equals(before), 'the binary was not signed');
  t.deepEqual((await readdir(dir)).sort(), ['hello', 'hello.c']);
});

test('binary-sign --json prints the path and the signing key\'s fingerprint', async (t) => {
  const dir = await tempDir(t);
  const binary = await compile(t, dir);
  const key = await newKey(t);
  const result = await runTool('peipkg-build', ['binary-sign', '--in', binary, '--key', key, '--json']);
  t.is(result.exitCode, 0, result.stderr);
  t.deepEqual(JSON.parse(result.stdout), { path: binary, fingerprint: signingKeyInfo(loadSigningKey(key)).fingerprint });
});
