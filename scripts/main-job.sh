#!/usr/bin/env bash
# The main job, on the embedded example: a real build farm in .demo/.
#  1. an upstream git repository (examples/upstream/hello-peios) with tags v1.0.0, v1.1.0 and
#     v2.0.0-rc.1;
#  2. the example recipe (examples/recipes/hello-peios), watching that repository;
#  3. a freshly generated farm key and a config.toml;
#  4. `peipkg-manager --once`: poll, build every release tag, publish, sign;
#  5. the published repository, and `peipkg-repo verify` on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
demo="$root/.demo"
rm -rf "$demo"
mkdir -p "$demo/recipes/hello-peios" "$demo/upstream"
chmod 755 "$demo"

# 1. The upstream, with fixed commit dates so the packages are reproducible.
cp "$root"/examples/upstream/hello-peios/* "$demo/upstream/"
export GIT_AUTHOR_NAME=Upstream GIT_AUTHOR_EMAIL=upstream@example.org GIT_COMMITTER_NAME=Upstream GIT_COMMITTER_EMAIL=upstream@example.org
(
  cd "$demo/upstream"
  git init -q -b main
  release() {
    echo "$1" > VERSION
    git add -A
    GIT_AUTHOR_DATE="$2" GIT_COMMITTER_DATE="$2" git commit -qm "release $1"
    git tag "$1"
  }
  release v1.0.0 2026-01-05T10:00:00Z
  release v1.1.0 2026-02-09T10:00:00Z
  release v2.0.0-rc.1 2026-03-02T10:00:00Z
)

# 2. The recipe, pointed at the local upstream.
cp "$root/examples/recipes/hello-peios/build.sh" "$demo/recipes/hello-peios/"
sed "s|https://example.invalid/hello-peios.git|$demo/upstream|" "$root/examples/recipes/hello-peios/peipkg.toml" > "$demo/recipes/hello-peios/peipkg.toml"

# 3. Key and configuration.
(umask 077 && openssl genpkey -algorithm ed25519 -out "$demo/farm.ed25519")
cat > "$demo/config.toml" <<TOML
[manager]
id = "demo-farm"
recipes_dir = "$demo/recipes"
state_dir = "$demo/state"

[repo]
name = "demo"
description = "The peipkg demo repository"

[signing]
key_file = "$demo/farm.ed25519"

[poll]
default_interval = "1h"
TOML

# 4. One sweep of the farm.
echo "== peipkg-manager --once" >&2
"$root/bin/peipkg-manager.js" --config "$demo/config.toml" --once

# 5. What was published, and its audit.
echo >&2
echo "== published repository: $demo/state/repo" >&2
(cd "$demo/state/repo" && find . -name '*.peipkg' | sort)
echo "== peipkg-repo verify --repo $demo/state/repo" >&2
"$root/bin/peipkg-repo.js" verify --repo "$demo/state/repo"
echo "Open $demo/state/repo/index.html in a browser to browse it." >&2
