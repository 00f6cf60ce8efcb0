/**
 * The working set of this process's memory cgroup: its memory counter
 * (`memory.current`, v1 `memory.usage_in_bytes`) less the inactive file
 * cache (`inactive_file` in `memory.stat`, v1 `total_inactive_file`), which
 * the kernel reclaims before it reaches the limit. This is the figure the
 * kubelet evicts on; the raw counter counts page cache and would report a
 * container that merely reads files as nearly full.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';

let statFile: { file: string | null; key: string } | undefined;

function locate(mount: string, path: string, file: string): string | null {
  let p = path;
  for (;;) {
    const dir = mount + (p === '/' ? '' : p);
    if (existsSync(`${dir}/${file}`)) return dir;
    if (p === '' || p === '/') return null;
    const slash = p.lastIndexOf('/');
    p = slash <= 0 ? '/' : p.slice(0, slash);
  }
}

/** Finds this process's memory cgroup `memory.stat` and the key of its inactive file cache. */
export function resolveMemoryStat(procSelfCgroup?: string, root = '/sys/fs/cgroup'): { file: string | null; key: string } {
  let text: string;
  try {
    text = procSelfCgroup ?? readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return { file: null, key: '' };
  }
  let v1: string | null = null;
  let v2: string | null = null;
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const ctrl = line.slice(a + 1, b);
    const path = line.slice(b + 1).trim();
    if (line.slice(0, a) === '0' && ctrl === '') v2 = path;
    else if (`,${ctrl},`.includes(',memory,')) v1 = path;
  }
  if (v1 !== null) {
    const dir = locate(`${root}/memory`, v1, 'memory.stat');
    return dir === null ? { file: null, key: '' } : { file: `${dir}/memory.stat`, key: 'total_inactive_file' };
  }
  if (v2 !== null) {
    const dir = locate(root, v2, 'memory.max');
    return dir === null ? { file: null, key: '' } : { file: `${dir}/memory.stat`, key: 'inactive_file' };
  }
  return { file: null, key: '' };
}

/** The value of `key` in a `memory.stat` text, or null. */
export function parseMemoryStat(text: string, key: string): number | null {
  const m = new RegExp(`^${key}\\s+(\\d+)\\s*$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** Inactive file cache of this process's memory cgroup, bytes, or null where it cannot be read. */
export function readInactiveFile(): number | null {
  statFile ??= process.platform === 'linux' ? resolveMemoryStat() : { file: null, key: '' };
  if (statFile.file === null) return null;
  try {
    return parseMemoryStat(readFileSync(statFile.file, 'utf8'), statFile.key);
  } catch {
    return null;
  }
}

/** The working set: `usage` less the inactive file cache (never below 0); `usage` itself when the cache is unknown. */
export function workingSet(usage: number, inactiveFile: number | null): number {
  return inactiveFile === null ? usage : Math.max(0, usage - inactiveFile);
}
