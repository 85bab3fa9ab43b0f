/** The pure parts of the container layer: names, labels, create options, exit classification, log timestamps. */
import { describe, expect, it } from 'vitest';
import { parseDockerArgs } from '../../backends/local/docker/args.js';
import { demux, timestampNs } from '../../backends/local/docker/logs.js';
import { containerLabels, containerName, labelFilters, type ContainerIdentity } from '../../backends/local/docker/names.js';
import { classifyContainer } from '../../backends/local/docker/outcome.js';
import { createOptions } from '../../backends/local/docker/spec.js';

const ID: ContainerIdentity = { invocationId: '0123456789abcdef', jobId: '0123456789abcdef.3', attempt: 2, role: 'harness' };

describe('container identity', () => {
  it('is deterministic', () => {
    expect(containerName(ID)).toBe('evalflow-0123456789abcdef.3-a2');
    expect(containerName({ ...ID, jobId: ID.invocationId, role: 'server', attempt: 1 })).toBe('evalflow-0123456789abcdef-a1-server');
    expect(containerLabels(ID)).toEqual({ 'evalflow.invocation': '0123456789abcdef', 'evalflow.job': '0123456789abcdef.3', 'evalflow.attempt': '2', 'evalflow.role': 'harness' });
    expect(labelFilters({ invocationId: ID.invocationId, jobId: ID.jobId })).toEqual({ label: ['evalflow.invocation=0123456789abcdef', 'evalflow.job=0123456789abcdef.3'] });
  });
  it('refuses ids that do not belong together or could break a name', () => {
    expect(() => containerName({ ...ID, jobId: 'fedcba9876543210.3' })).toThrow(/invalid container identity/);
    expect(() => containerName({ ...ID, jobId: '0123456789abcdef.3/../x' })).toThrow(/invalid container identity/);
    expect(() => containerName({ ...ID, attempt: -1 })).toThrow(/invalid attempt/);
  });
});

describe('create options', () => {
  it('sets init, host networking, labels, mounts and the secrets file; no secret in Env', () => {
    const opts = createOptions({
      identity: ID,
      image: 'evalflow/harness:1',
      cmd: ['run_eval', '--run_config', '/evalflow/config_ef.yaml'],
      env: { HF_HOME: '/cache' },
      secretsFile: '/runs/job/.secrets.env',
      mounts: [
        { source: '/runs/job/artifacts', target: '/results' },
        { source: '/datasets', target: '/datasets', readOnly: true },
      ],
      user: '1000:1000',
      memoryBytes: 64 * 1024 ** 2,
    });
    expect(opts).toEqual({
      name: 'evalflow-0123456789abcdef.3-a2',
      Image: 'evalflow/harness:1',
      Cmd: ['run_eval', '--run_config', '/evalflow/config_ef.yaml'],
      Env: ['HF_HOME=/cache'],
      Labels: containerLabels(ID),
      User: '1000:1000',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      HostConfig: {
        Init: true,
        NetworkMode: 'host',
        Binds: ['/runs/job/artifacts:/results:rw', '/datasets:/datasets:ro', '/runs/job/.secrets.env:/evalflow/secrets.env:ro'],
        Memory: 64 * 1024 ** 2,
        MemorySwap: 64 * 1024 ** 2,
      },
    });
  });
  it('merges extra_docker_args without letting them change identity, init or networking', () => {
    const opts = createOptions({
      identity: ID,
      image: 'img',
      cmd: [],
      mounts: [{ source: '/a', target: '/results' }],
      dockerArgs: parseDockerArgs('-v /x:/x:ro -l team=eval -m 1g --shm-size 1g -e A=1 --entrypoint /bin/sh -u nobody'),
    });
    expect(opts.Labels).toEqual({ team: 'eval', ...containerLabels(ID) });
    expect(opts.HostConfig).toMatchObject({ Init: true, NetworkMode: 'host', Binds: ['/a:/results:rw', '/x:/x:ro'], Memory: 1024 ** 3, MemorySwap: 1024 ** 3, ShmSize: 1024 ** 3 });
    expect(opts).toMatchObject({ Env: ['A=1'], Entrypoint: ['/bin/sh'], User: 'nobody' });
    expect(() => createOptions({ identity: ID, image: 'img', cmd: [], mounts: [{ source: 'rel', target: '/x' }] })).toThrow(/must be absolute/);
  });
});

describe('exit classification', () => {
  const state = (Status: string, ExitCode = 0, OOMKilled = false, Error = '') => ({ Status, ExitCode, OOMKilled, Error });
  it('tells every ending apart', () => {
    expect(classifyContainer('c', undefined)).toEqual({ state: 'missing' });
    expect(classifyContainer('c', state('created'))).toEqual({ state: 'created' });
    expect(classifyContainer('c', state('running'))).toEqual({ state: 'running' });
    expect(classifyContainer('c', state('exited', 0))).toEqual({ state: 'succeeded' });
    expect(classifyContainer('c', state('exited', 137, true))).toMatchObject({ state: 'oomKilled', exitCode: 137 });
    expect(classifyContainer('c', state('exited', 137), { memoryLimited: true })).toMatchObject({ state: 'oomKilled' });
    expect(classifyContainer('c', state('exited', 137))).toEqual({ state: 'signalled', signal: 'SIGKILL', exitCode: 137, reason: 'container c ended by SIGKILL (exit 137)' });
    expect(classifyContainer('c', state('exited', 143))).toMatchObject({ state: 'signalled', signal: 'SIGTERM' });
    expect(classifyContainer('c', state('exited', 3), { logTail: 'line 1\nboom\n' })).toEqual({ state: 'failed', exitCode: 3, reason: 'container c exited with code 3; last output:\nline 1\nboom' });
    expect(classifyContainer('c', state('dead', 127, false, 'exec: "nope": not found'))).toMatchObject({ state: 'failed', exitCode: 127, reason: 'container c exited with code 127 (exec: "nope": not found)' });
  });
});

describe('log helpers', () => {
  it('orders Docker timestamps with trimmed nanoseconds', () => {
    expect(timestampNs('2026-11-30T06:10:00Z')).toBe(1796019000n * 1_000_000_000n);
    expect(timestampNs('2026-11-30T06:10:00.5Z') - timestampNs('2026-11-30T06:10:00.000000001Z')).toBe(499_999_999n);
    expect(() => timestampNs('yesterday')).toThrow(/unexpected Docker log timestamp/);
  });
  it('demuxes stdout and stderr frames in order', () => {
    const frame = (stream: number, text: string) => {
      const payload = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(payload.length, 4);
      return Buffer.concat([header, payload]);
    };
    expect(demux(Buffer.concat([frame(1, 'out\n'), frame(2, 'err ✓\n'), frame(1, 'tail')]))).toEqual(['out\n', 'err ✓\n', 'tail']);
  });
});
