// Stand-in for @napi-rs/cross-toolchain, which @napi-rs/cli loads only for `napi build
// --use-napi-cross`. The real package pulls in @napi-rs/tar and @napi-rs/lzma, whose platform
// packages the registry reachable from the build machines does not carry, so `npm ci` could not
// verify the lock file. Cross builds use Debian's toolchain instead (scripts/build-arm64.sh).
'use strict';
throw new Error('@napi-rs/cross-toolchain is not installed in this project; cross-build with Debian\'s toolchain (see README)');
