/** The outage gate's decisions on a fake clock: one shared probe, backoff while down, the limit, abort. */
import { describe, expect, it } from 'vitest';
import { EndpointOutageError, OutageGate, type GateState, type OutageGateOptions } from '../../harness/outage.js';

const URL = 'http://127.0.0.1:9/v1/chat/completions';

/** A gate whose probe answers from a script (null = the endpoint answers) and whose sleeps advance a fake clock. */
function scripted(answers: Array<string | null>, opts: Partial<OutageGateOptions> = {}) {
  let now = 0;
  const sleeps: number[] = [];
  const events: Array<[GateState, string]> = [];
  let probes = 0;
  const gate = new OutageGate({
    url: URL,
    limitMs: 30_000,
    limitSource: 'config.params.extra.endpoint_outage_timeout',
    probe: async () => {
      probes++;
      const answer = answers.shift();
      if (answer === undefined) throw new Error('probe script exhausted');
      return answer;
    },
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    onChange: (state, detail) => events.push([state, detail]),
    ...opts,
  });
  return { gate, sleeps, events, probes: () => probes };
}

describe('OutageGate', () => {
  it('an endpoint that answers the probe: the failure was the sample\'s own, the gate stays open', async () => {
    const { gate, sleeps, probes } = scripted([null]);
    expect(await gate.check()).toBe('up');
    expect(gate.isUp).toBe(true);
    expect(probes()).toBe(1);
    expect(sleeps).toEqual([]);
    expect(gate.stats).toEqual({ outages: 0, downMs: 0 });
  });

  it('down: closes, re-probes with doubling delays capped at maxDelayMs, reopens when it answers', async () => {
    const { gate, sleeps, events } = scripted(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'HTTP 503: busy', 'ECONNREFUSED', 'ECONNREFUSED', null], { maxDelayMs: 8000, limitMs: 60_000 });
    const waiting = gate.whenUp(); // open: resolves at once
    await waiting;
    expect(await gate.check()).toBe('down');
    expect(gate.isUp).toBe(false);
    await gate.whenUp();
    expect(gate.isUp).toBe(true);
    expect(sleeps).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(gate.stats).toEqual({ outages: 1, downMs: 31_000 });
    expect(events.map(([state]) => state)).toEqual(['down', 'up']);
    expect(events[0]?.[1]).toBe(
      `endpoint ${URL} is not answering (ECONNREFUSED); sending paused, probing with backoff for up to 60 s (config.params.extra.endpoint_outage_timeout)`,
    );
    expect(events[1]?.[1]).toBe(`endpoint ${URL} answers again after 31 s; resuming`);
  });

  it('one probe decides for every sample that asks meanwhile; later checks while down do not probe', async () => {
    let release: (answer: string | null) => void = () => undefined;
    let probes = 0;
    const gate = new OutageGate({
      url: URL,
      limitMs: 60_000,
      limitSource: 'x',
      probe: () => {
        probes++;
        return new Promise((resolve) => (release = resolve));
      },
      sleep: () => new Promise(() => undefined), // stays down for this test
    });
    const verdicts = Promise.all([gate.check(), gate.check(), gate.check()]);
    expect(gate.isUp).toBe(false); // checking: nothing is sent meanwhile
    release('ECONNRESET');
    expect(await verdicts).toEqual(['down', 'down', 'down']);
    expect(await gate.check()).toBe('down');
    expect(probes).toBe(1);
  });

  it('fails after the outage limit with the URL, the limit and the last error; every waiter gets the error', async () => {
    const { gate, sleeps } = scripted(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'HTTP 502: bad gateway', 'unused'], { limitMs: 20_000 });
    expect(await gate.check()).toBe('down');
    const waiters = [gate.whenUp(), gate.whenUp()];
    for (const w of waiters) await expect(w).rejects.toBeInstanceOf(EndpointOutageError);
    // 1 + 2 + 4 + 8, then only the 5 s left before the limit.
    expect(sleeps).toEqual([1000, 2000, 4000, 8000, 5000]);
    const message = `endpoint ${URL} did not answer for 20 s (limit 20 s, config.params.extra.endpoint_outage_timeout); last error: HTTP 502: bad gateway`;
    await expect(waiters[0]).rejects.toThrow(message);
    await expect(gate.whenUp()).rejects.toThrow(message);
    await expect(gate.check()).rejects.toThrow(message);
    expect(gate.stats.outages).toBe(1);
  });

  it('a second outage is counted and timed on its own', async () => {
    const { gate } = scripted(['ECONNREFUSED', null, 'ECONNREFUSED', 'ECONNREFUSED', null]);
    expect(await gate.check()).toBe('down');
    await gate.whenUp();
    expect(await gate.check()).toBe('down');
    await gate.whenUp();
    expect(gate.stats).toEqual({ outages: 2, downMs: 1000 + 3000 });
  });

  it('a probe that throws counts as "does not answer"', async () => {
    const gate = new OutageGate({ url: URL, limitMs: 1, limitSource: 'x', probe: () => Promise.reject(new Error('boom')), sleep: async () => undefined });
    expect(await gate.check()).toBe('down');
    await expect(gate.whenUp()).rejects.toThrow(/last error: boom$/);
  });

  it('aborting the run rejects the waiters with the abort reason and stops probing', async () => {
    const controller = new AbortController();
    let probes = 0;
    const gate = new OutageGate({
      url: URL,
      limitMs: 60_000,
      limitSource: 'x',
      signal: controller.signal,
      probe: async () => {
        probes++;
        return 'ECONNREFUSED';
      },
    });
    expect(await gate.check()).toBe('down');
    const waiting = gate.whenUp();
    controller.abort(new Error('SIGTERM'));
    await expect(waiting).rejects.toThrow('SIGTERM');
    await expect(gate.whenUp()).rejects.toThrow('SIGTERM');
    await new Promise((r) => setTimeout(r, 1200));
    expect(probes).toBe(1);
  });
});
