/**
 * The build user's default name, apart from ts/build/user.ts so that `peipkg-build help` can print
 * it without loading node:child_process and node:fs/promises (~10 ms of start-up).
 */

export const DEFAULT_BUILD_USER = 'peipkg-build';
