/**
 * The recipe glob matcher against the reference semantics (doublestar v4 `Match`): every row of the
 * recipes-and-farm.md §4.3 table, its whole-path rules, the official recipes' patterns, the directory
 * patterns of §4.4, the picomatch differences named in DECISIONS.md, and bad patterns.
 */

import test from 'ava';
import type { ExecutionContext } from 'ava';

import { InputError } from '../../ts/errors.js';
import { compileGlob, GlobSyntaxError } from '../../ts/build/glob.js';

/** Asserts that `pattern` matches every path of `yes` and none of `no`. */
function check(t: ExecutionContext, pattern: string, yes: string[], no: string[]): void {
  const glob = compileGlob(pattern);
  for (const path of yes) t.true(glob.matches(path), `${pattern} should match ${path}`);
  for (const path of no) t.false(glob.matches(path), `${pattern} should not match ${path}`);
}

// §4.3 whole-path rules

test('a pattern matches the whole path, case-sensitively', (t) => {
  check(
    t,
    'usr/bin/hello',
    ['usr/bin/hello'],
    ['usr/bin/hello2', 'usr/bin', 'x/usr/bin/hello', 'usr/bin/Hello'],
  );
  check(t, 'bin', ['bin'], ['usr/bin', 'bin/x', 'BIN']);
});

test('a pattern starting with / or ./ never matches, and is not an error', (t) => {
  check(t, '/usr/bin/x', [], ['usr/bin/x', 'usr/bin/x/y']);
  check(t, './usr/bin/x', [], ['usr/bin/x']);
  check(t, '/**', [], ['usr', 'usr/bin/x']);
  check(t, './*', [], ['x', '.x']);
  // The same patterns without the prefix do match.
  check(t, 'usr/bin/x', ['usr/bin/x'], []);
});

test('/ is the only separator', (t) => {
  check(t, 'a\\b', ['ab'], ['a\\b', 'a/b']);
  check(t, 'a*', ['a\\b'], ['a/b']);
});

// §4.3 syntax table, one test per row

test('* is any run of non-/ characters, possibly empty, dotfiles included', (t) => {
  check(
    t,
    'usr/bin/*',
    ['usr/bin/.hidden', 'usr/bin/hello', 'usr/bin/é', 'usr/bin/.'],
    ['usr/bin/x/y', 'usr/bin', 'usr/sbin/x', 'usr/bin/.hidden/x'],
  );
  check(t, 'a*', ['a', 'abc', 'a.b'], ['ba', 'a/b']);
  check(t, '*.so', ['libx.so', '.so'], ['lib/x.so', 'libx.so.1']);
  check(t, '*a*b', ['ab', 'xaxb', 'aab', 'abab'], ['aba', 'a/b', 'xa/xb']);
  check(t, 'a*b*c*d*e*/f', ['axbxcxdxe/f', 'axbxcxdxexxx/f'], ['axbxcxdxe/xxx/f', 'axbxcxdxexxx/fff']);
});

test('? is exactly one code point other than /', (t) => {
  check(t, 'a?c', ['abc', 'a.c', 'aéc', 'a😀c'], ['ac', 'abbc', 'a/c', 'aé😀c']);
  check(t, '?', ['x', 'é', '😀', '.'], ['', 'xy', '😀😀']);
  // é decomposed is two code points (e + combining acute): one ? is not enough.
  check(t, 'a??c', ['ae\u0301c', 'a😀😀c'], ['a😀c', 'a\u00e9c']);
  check(t, '😀?', ['😀é', '😀😀'], ['😀', 'xé', '\ud83dé']);
});

test('** as a complete component is zero or more whole components', (t) => {
  check(t, 'a/**', ['a', 'a/b', 'a/b/c', 'a/.x'], ['ab', 'b/a', 'x/a/b']);
  check(t, '**/c', ['c', 'x/y/c', 'x/c', '.d/c'], ['xc', 'c/x', 'x/yc']);
  check(t, 'a/**/b', ['a/b', 'a/x/b', 'a/x/y/b'], ['ab', 'a/xb', 'a/b/c', 'x/a/b']);
  check(t, '**', ['x', '.x', 'a/b', 'a/b/c/d'], []);
  check(t, '**/*.h', ['x.h', 'a/b/x.h'], ['a/b/x.hpp', 'x.h/a']);
});

test('** that is not a whole component behaves like *', (t) => {
  check(t, 'abc**', ['abc', 'abcd', 'abc.x'], ['abc/d', 'ab']);
  check(t, 'a/**b', ['a/b', 'a/xb'], ['a/x/b', 'a/xbc']);
  check(t, 'x**/y', ['x/y', 'xz/y'], ['x/z/y']);
  // abc** answers like abc* on every path.
  const double = compileGlob('abc**');
  const single = compileGlob('abc*');
  for (const path of ['abc', 'abcd', 'abc/d', 'abc/d/e', 'ab', 'xabc']) {
    t.is(double.matches(path), single.matches(path), path);
  }
});

test('[abc], [a-z], [^…], [!…] classes match one non-/ code point', (t) => {
  check(t, 'x[abc]', ['xa', 'xb', 'xc'], ['xd', 'x', 'xab', 'x/']);
  check(t, 'x[a-z]y', ['xay', 'xmy', 'xzy'], ['xAy', 'x0y', 'xy', 'x/y']);
  check(t, 'x[!a]y', ['xby', 'x.y', 'xéy'], ['xay', 'xy', 'x/y']);
  check(t, 'x[^a]y', ['xby', 'x😀y'], ['xay', 'x/y']);
  check(t, '[😀é]', ['😀', 'é'], ['\ud83d', 'e', '😀😀']);
  check(t, 'x[!a-c]', ['xd', 'xA'], ['xa', 'xb', 'xc']);
  check(t, '[a-ζ]*', ['α', 'b'], ['A']);
  check(t, 'a[^a][^a][^a]b', [], ['a☺b']);
  check(t, 'a[^a]b', ['a☺b'], ['a/b']);
});

test('a class never matches /', (t) => {
  check(t, 'a[/]b', [], ['a/b']);
  check(t, 'a[!x]b', ['ayb'], ['a/b']);
  check(t, 'a[^x]b', ['ayb'], ['a/b']);
  check(t, 'a[.-0]b', ['a.b', 'a0b'], ['a/b']);
});

test('\\ escapes inside a class', (t) => {
  check(t, '[\\]a]', [']', 'a'], ['\\', 'b']);
  check(t, '[\\-]', ['-'], ['\\', 'a']);
  check(t, '[x\\-]', ['x', '-'], ['z']);
  check(t, '[\\!x]', ['!', 'x'], ['y']);
  check(t, '[Z-\\]]', ['Z', '\\', ']'], ['^', 'a']);
});

test('a hyphen at either end of a class is literal', (t) => {
  check(t, '[-x]', ['-', 'x'], ['a', 'w']);
  check(t, '[x-]', ['x', '-'], ['z', 'y']);
  check(t, '[-]', ['-'], ['a']);
  check(t, '[!-x]', ['a'], ['-', 'x']);
  check(t, '[a-b-c]', ['a', 'b', '-', 'c'], ['d']);
});

test('{alt1,alt2} alternatives, nested, containing / and empty', (t) => {
  check(t, 'usr/{bin,sbin}/x', ['usr/bin/x', 'usr/sbin/x'], ['usr/lib/x', 'usr/{bin,sbin}/x']);
  check(t, 'a{,bc}', ['a', 'abc'], ['ab', 'abcbc']);
  check(t, 'a{b,c{d,e}}f', ['abf', 'acdf', 'acef'], ['acf', 'aef', 'adf']);
  check(t, '{usr/lib,lib}/*.so', ['usr/lib/x.so', 'lib/x.so'], ['usr/x.so', 'usr/lib/a/x.so']);
  check(t, '*.{so,a}', ['x.so', 'x.a'], ['x.o', 'x.so.1']);
  check(t, 'a{}b', ['ab'], ['a{}b']);
  check(t, '{a,b}/**', ['a', 'b/c/d'], ['c/a']);
  check(t, 'x{a\\,b,c}', ['xa,b', 'xc'], ['xa', 'xb']);
  check(t, '[{]{a,b}', ['{a', '{b'], ['{', 'a']);
  check(t, '[\\]{]{a,b}', ['{a', ']b'], ['a', '{', '\\a']);
});

test('\\c is the character c taken literally', (t) => {
  check(t, 'a\\*b', ['a*b'], ['ab', 'axb']);
  check(t, 'a\\?b', ['a?b'], ['axb']);
  check(t, '\\[x]', ['[x]'], ['x']);
  check(t, '\\{a,b\\}', ['{a,b}'], ['a', 'b']);
  check(t, '\\a', ['a'], ['\\a']);
  check(t, '\\\\', ['\\'], ['']);
});

// §4.3 patterns of the official recipes

test('official-recipe patterns match realistic staged paths', (t) => {
  check(t, 'usr/bin/**', ['usr/bin', 'usr/bin/hello', 'usr/bin/sub/tool'], ['usr/binx', 'usr/sbin/x', 'usr']);
  check(
    t,
    'usr/include/**',
    ['usr/include/figlet.h', 'usr/include/sys/x.h', 'usr/include'],
    ['usr/lib/libx.so', 'usr/includes/x.h'],
  );
  check(
    t,
    'usr/share/figlet/**',
    ['usr/share/figlet/standard.flf', 'usr/share/figlet/fonts/big.flf'],
    ['usr/share/figlets', 'usr/share/man/man6/figlet.6'],
  );
  check(
    t,
    'usr/share/locale/**/hello.mo',
    [
      'usr/share/locale/de/LC_MESSAGES/hello.mo',
      'usr/share/locale/hello.mo',
      'usr/share/locale/pt_BR/hello.mo',
    ],
    [
      'usr/share/locale/de/LC_MESSAGES/other.mo',
      'usr/share/locale/de/LC_MESSAGES/hello.mo.bak',
      'usr/share/hello.mo',
    ],
  );
  check(
    t,
    'usr/share/info/hello.info*',
    ['usr/share/info/hello.info', 'usr/share/info/hello.info-1', 'usr/share/info/hello.info.gz'],
    ['usr/share/info/dir', 'usr/share/info/hello.info/x', 'usr/share/info/hello.inf'],
  );
  check(
    t,
    'usr/share/man/man1/hello.1*',
    ['usr/share/man/man1/hello.1', 'usr/share/man/man1/hello.1.gz'],
    ['usr/share/man/man1/hello.8', 'usr/share/man/man1/hello', 'usr/share/man/de/man1/hello.1'],
  );
  check(
    t,
    'usr/share/regman/*.regman',
    ['usr/share/regman/hello.regman', 'usr/share/regman/.regman'],
    ['usr/share/regman/hello.regman.orig', 'usr/share/regman/sub/x.regman', 'usr/share/regman'],
  );
  check(t, 'etc/hello.conf', ['etc/hello.conf'], ['etc/hello.conf.d', 'etc/helloxconf']);
});

// §4.4 directory patterns

test('a pattern ending in / is directory-only with its trailing slashes removed', (t) => {
  for (const name of ['dev', 'proc', 'run', 'sys', 'tmp', 'var']) {
    const glob = compileGlob(`${name}/`);
    t.true(glob.directoryOnly, name);
    t.is(glob.pattern, `${name}/`);
    t.true(glob.matches(name), name);
    t.false(glob.matches(`${name}/x`), name);
    t.false(glob.matches(`x${name}`), name);
  }
  const twice = compileGlob('var/log//');
  t.true(twice.directoryOnly);
  t.true(twice.matches('var/log'));
  t.false(twice.matches('var'));
  const plain = compileGlob('var/**');
  t.false(plain.directoryOnly);
  t.is(plain.pattern, 'var/**');
});

test('a/**/ claims a and every directory below it', (t) => {
  const glob = compileGlob('a/**/');
  t.true(glob.directoryOnly);
  check(t, 'a/**/', ['a', 'a/b', 'a/b/c'], ['b', 'ab', 'b/a']);
});

// The picomatch differences named in DECISIONS.md

test('picomatch difference: a/** matches the file a', (t) => {
  check(t, 'a/**', ['a'], ['ab']);
  check(t, 'usr/share/doc/**', ['usr/share/doc'], ['usr/share/docs']);
});

test('picomatch difference: [!x] is a negated class', (t) => {
  check(t, '[!x]', ['y', '!'], ['x']);
  check(t, 'file[!0-9]', ['filea', 'file!'], ['file1', 'file9']);
});

test('picomatch difference: ./ prefixes are not stripped', (t) => {
  check(t, './a', [], ['a', 'x/a']);
  check(t, './**', [], ['a', 'a/b']);
});

test('picomatch difference: extglob and leading ! are literal', (t) => {
  check(t, '+(a)', ['+(a)'], ['a', 'aa']);
  check(t, '@(a|b)', ['@(a|b)'], ['a', 'b']);
  check(t, '!(x)', ['!(x)'], ['y', 'x']);
  check(t, '*(a)', ['(a)', 'x(a)'], ['a', 'aa']);
  check(t, '?(a)', ['x(a)'], ['a', '(a)']);
  check(t, '!foo', ['!foo'], ['foo', 'bar']);
});

// Edge cases of doublestar's algorithm that a regex translation would get wrong

test('only *, **, /**, **/, /**/ may match an empty remainder of the name', (t) => {
  check(t, 'a*', ['a'], []);
  check(t, 'a**', ['a'], []);
  check(t, 'a/*', [], ['a']);
  check(t, 'a/**/*', ['a/b'], ['a']);
  check(t, 'a{,/**}', ['a', 'a/b'], []);
  check(t, 'a/**/**', ['a/b'], ['a']);
  check(t, 'a*/**', ['ab/c', 'a/c'], ['a']);
});

test('an inverted range matches only its first character', (t) => {
  check(t, '[z-a]', ['z'], ['a', 'm']);
});

// Bad patterns

// `a}` and `{a,[}]` fail doublestar's ValidatePattern; `{[,]a,b}` passes it but yields the alternative `[`.
const BAD_PATTERNS = ['[abc', 'a\\', '{a,b', '[]', '[!]', '[^]', '[', 'a[', 'x/[!', '[]a]'];
BAD_PATTERNS.push('a}', '{a,[}]', '{[,]a,b}');
for (const pattern of BAD_PATTERNS) {
  test(`bad pattern ${JSON.stringify(pattern)} is rejected when compiled`, (t) => {
    const error = t.throws(() => compileGlob(pattern), { instanceOf: GlobSyntaxError });
    t.true(error instanceof InputError);
    t.is(error?.message, `invalid glob "${pattern}": syntax error in pattern`);
    t.is(error?.exitCode, 1);
  });
}

test('a directory pattern whose stripping leaves a lone \\ is bad', (t) => {
  t.throws(() => compileGlob('a\\/'), {
    instanceOf: GlobSyntaxError,
    message: 'invalid glob "a\\/": syntax error in pattern',
  });
});

test('more than 10,000 brace alternatives is a bad pattern; 10,000 is fine', (t) => {
  const four = '{a,b,c,d,e,f,g,h,i,j}'.repeat(4);
  t.true(compileGlob(four).matches('abcd'));
  t.false(compileGlob(four).matches('abck'));
  t.throws(() => compileGlob(four + '{x,y}'), { instanceOf: GlobSyntaxError });
});

test('valid odd patterns compile', (t) => {
  for (const pattern of ['', '/', '{}', 'a]', ']]]', '+(a)', '[\\]]', '\\{']) {
    t.notThrows(() => compileGlob(pattern), pattern);
  }
  t.false(compileGlob('').matches('a'));
  t.false(compileGlob('/').matches('a'));
});
