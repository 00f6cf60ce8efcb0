// Which paths a LoadShedder exempts: exact paths, prefixes ('/x/*') and
// regular expressions, always on the path without its query string.
import { afterEach, describe, expect, test } from 'vitest';
import { LoadShedder } from '../src/shedding';

const made: LoadShedder[] = [];
afterEach(() => {
  for (const s of made.splice(0)) s.close();
});

function shedder(exempt: Array<string | RegExp>, defaultExempt = false): LoadShedder {
  const s = new LoadShedder({ exempt, defaultExempt });
  made.push(s);
  return s;
}

describe('LoadShedder exempt paths', () => {
  test('exact paths match the path alone, with or without a query string', () => {
    const s = shedder(['/ping', '/a/b']);
    const cases: Array<[string, boolean]> = [
      ['/ping', true],
      ['/ping?x=1', true],
      ['/ping?', true],
      ['/pingx', false],
      ['/pin', false],
      ['/ping/', false],
      ['/pinG', false],
      ['/a/b?c/d', true],
      ['/a/bc', false],
      ['/x?/ping', false],
      ['', false],
      ['?', false],
    ];
    for (const [path, exempt] of cases) expect([path, s.isExempt(path)]).toEqual([path, exempt]);
  });

  test('prefixes match only within the path, never into the query string', () => {
    const s = shedder(['/internal/*', '/in*']);
    const cases: Array<[string, boolean]> = [
      ['/internal/stats', true],
      ['/internal/', true],
      ['/internal?x=/', true], // '/in*' matches '/internal'
      ['/i?n', false],
      ['/in', true],
      ['/out?/internal/', false],
    ];
    for (const [path, exempt] of cases) expect([path, s.isExempt(path)]).toEqual([path, exempt]);
    const only = shedder(['/internal/*']);
    expect(only.isExempt('/internal?x=/')).toBe(false);
    expect(only.isExempt('/internal/a?b')).toBe(true);
  });

  test('regular expressions test the path without the query string', () => {
    const s = shedder([/^\/v\d+\/health$/, /static/g]);
    expect(s.isExempt('/v2/health')).toBe(true);
    expect(s.isExempt('/v2/health?full=1')).toBe(true);
    expect(s.isExempt('/v2/healthy')).toBe(false);
    expect(s.isExempt('/x?static')).toBe(false);
    // A global RegExp keeps no state between calls.
    expect(s.isExempt('/static/a')).toBe(true);
    expect(s.isExempt('/static/a')).toBe(true);
  });

  test('the default list, and paths of the same length that differ', () => {
    const s = shedder([], true);
    for (const p of ['/health', '/healthz', '/ready', '/readyz', '/live', '/livez', '/status', '/metrics', '/metrics?name[]=a']) {
      expect([p, s.isExempt(p)]).toEqual([p, true]);
    }
    for (const p of ['/healthy', '/metricz', '/statuz', '/lives', '/']) expect([p, s.isExempt(p)]).toEqual([p, false]);
  });

  test('decide() counts exempt requests and never sheds them', () => {
    const s = shedder(['/ping']);
    s.controller.force('emergency');
    expect(s.decide('/ping?a')).toBeNull();
    expect(s.decide('/work')).not.toBeNull();
    expect(s.stats()).toMatchObject({ requests: 2, exempt: 1, shed: 1 });
  });
});
