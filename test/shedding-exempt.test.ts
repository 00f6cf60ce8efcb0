// Which paths a LoadShedder exempts: exact paths, prefixes ('/x/*') and
// regular expressions, always on the path without its query string.
import { afterEach, describe, expect, test } from 'vitest';
import { DegradationController } from '../src/degradation';
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

  test('while nothing can be shed, decide() counts the request without looking at its path; exempt ones are counted while shedding applies', async () => {
    class CountingRegExp extends RegExp {
      calls = 0;
      override test(s: string): boolean {
        this.calls++;
        return super.test(s);
      }
    }
    const re = new CountingRegExp('^/static/');
    const controller = new DegradationController();
    let healthy = true;
    const s = new LoadShedder({ controller, shedAt: 'minimal', exempt: ['/ping', re], healthCheck: () => healthy, healthCheckIntervalMs: 3_600_000 });
    made.push(s);
    await s.runCheck();
    for (const level of ['normal', 'reduced'] as const) {
      controller.force(level);
      expect(s.decide('/ping')).toBeNull();
      expect(s.decide('/static/a.css')).toBeNull();
      expect(s.decide('/work')).toBeNull();
    }
    expect(re.calls).toBe(0);
    expect(s.stats()).toMatchObject({ requests: 6, exempt: 0, shed: 0 });
    controller.force('minimal');
    expect(s.decide('/ping')).toBeNull();
    expect(s.decide('/static/a.css')).toBeNull();
    expect(s.decide('/work')).toMatchObject({ cause: 'level', level: 'minimal' });
    expect(re.calls).toBe(2);
    expect(s.stats()).toMatchObject({ requests: 9, exempt: 2, shed: 1 });
    // A failing check applies at any level: paths are matched again.
    controller.reset();
    healthy = false;
    await s.runCheck();
    expect(s.decide('/ping')).toBeNull();
    expect(s.decide('/work')).toMatchObject({ cause: 'check', level: 'normal' });
    expect(s.stats()).toMatchObject({ requests: 11, exempt: 3, shed: 2 });
    healthy = true;
    await s.runCheck();
    expect(s.decide('/work')).toBeNull();
    expect(re.calls).toBe(3);
    expect(s.stats()).toMatchObject({ requests: 12, exempt: 3, shed: 2 });
  });
});
